//! The routing group: which hosts reach a Source, its subdomain under the
//! gateway's base domain and its custom domains.

use imgmesh_proto::registry::v1 as proto;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::columns::Query;
use crate::error::RegistryError;
use crate::source::update_mask::UpdateMask;

/// The update-mask paths of the group.
pub(crate) const MASK_PATHS: &[&str] = &["routing", "routing.subdomain", "routing.custom_domains"];

const MAX_LABEL_LEN: usize = 63;
const MAX_DOMAIN_LEN: usize = 253;
const MAX_CUSTOM_DOMAINS: usize = 32;

/// A Source's routing, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Routing {
    /// DNS label: `<subdomain>.<base-domain>` reaches the Source.
    pub(crate) subdomain: String,
    /// Further host names, lowercased and sorted (stored in
    /// `source_domains`, read and written by the store).
    pub(crate) custom_domains: Vec<String>,
}

// === impl Routing ===

impl Routing {
    /// Checks a create request's subdomain and custom domains.
    pub(crate) fn validate(routing: &proto::Routing) -> Result<Routing, RegistryError> {
        Ok(Routing {
            subdomain: subdomain(&routing.subdomain)?,
            custom_domains: custom_domains(&routing.custom_domains)?,
        })
    }

    /// Binds the `subdomain` column.
    pub(crate) fn bind<'q>(&'q self, query: Query<'q>) -> Query<'q> {
        query.bind(&self.subdomain)
    }

    /// Reads the `subdomain` column; the custom domains start empty.
    pub(crate) fn from_row(row: &AnyRow) -> Result<Routing, sqlx::Error> {
        Ok(Routing {
            subdomain: row.try_get("subdomain")?,
            custom_domains: Vec::new(),
        })
    }
}

impl From<&Routing> for proto::Routing {
    /// The group's public form.
    fn from(routing: &Routing) -> proto::Routing {
        proto::Routing {
            subdomain: routing.subdomain.clone(),
            custom_domains: routing.custom_domains.clone(),
        }
    }
}

/// A change of routing in an update: `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct RoutingChange {
    /// New subdomain.
    pub(crate) subdomain: Option<String>,
    /// New custom domains (replacing the list).
    pub(crate) custom_domains: Option<Vec<String>>,
}

// === impl RoutingChange ===

impl RoutingChange {
    /// Checks the routing fields `mask` names.
    pub(crate) fn validate(
        routing: &proto::Routing,
        mask: &UpdateMask,
    ) -> Result<RoutingChange, RegistryError> {
        Ok(RoutingChange {
            subdomain: mask
                .covers("routing.subdomain")
                .then(|| subdomain(&routing.subdomain))
                .transpose()?,
            custom_domains: mask
                .covers("routing.custom_domains")
                .then(|| custom_domains(&routing.custom_domains))
                .transpose()?,
        })
    }

    /// Applies the present fields to `routing`.
    pub(crate) fn apply(&self, routing: &mut Routing) {
        if let Some(subdomain) = &self.subdomain {
            routing.subdomain = subdomain.clone();
        }
        if let Some(domains) = &self.custom_domains {
            routing.custom_domains = domains.clone();
        }
    }
}

// === field rules ===

/// `subdomain`: one DNS label, lowercase.
fn subdomain(value: &str) -> Result<String, RegistryError> {
    if is_dns_label(value) {
        Ok(value.to_owned())
    } else {
        Err(RegistryError::invalid(
            "subdomain",
            "must be a dns label: 1 to 63 lowercase letters, digits or '-', \
             not starting or ending with '-'",
        ))
    }
}

/// Whether `value` is one lowercase DNS label.
pub(crate) fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LABEL_LEN
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `custom_domains`: at most 32 distinct DNS names of two or more labels,
/// each at most 253 characters; lowercased, a trailing dot dropped, and
/// returned sorted (the order the registry stores and shows them in).
fn custom_domains(values: &[String]) -> Result<Vec<String>, RegistryError> {
    let field = "custom_domains";
    if values.len() > MAX_CUSTOM_DOMAINS {
        return Err(RegistryError::invalid(field, "at most 32 domains"));
    }
    let mut domains: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let domain = custom_domain(value)?;
        if domains.contains(&domain) {
            return Err(RegistryError::invalid(
                field,
                format!("{domain:?} is listed twice"),
            ));
        }
        domains.push(domain);
    }
    domains.sort();
    Ok(domains)
}

/// One custom domain, lowercased, without a trailing dot.
fn custom_domain(value: &str) -> Result<String, RegistryError> {
    let domain = value
        .strip_suffix('.')
        .unwrap_or(value)
        .to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let tld_is_numeric = labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    if domain.len() > MAX_DOMAIN_LEN
        || labels.len() < 2
        || !labels.iter().all(|label| is_dns_label(label))
        || tld_is_numeric
    {
        return Err(RegistryError::invalid(
            "custom_domains",
            "each must be a dns name of two or more labels, e.g. images.example.com",
        ));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source_fields::tests::table;

    /// Subdomains are single lowercase DNS labels.
    #[test]
    fn subdomain_rules() {
        let long = "a".repeat(63);
        let too_long = "a".repeat(64);
        table(
            "subdomain",
            subdomain,
            &["demo", "a", "a-b", "0x1", long.as_str()],
            &[
                "",
                too_long.as_str(),
                "-a",
                "a-",
                "Not_A_Label",
                "a_b",
                "a.b",
                "ÿ",
                "A",
            ],
        );
    }

    /// Custom domains are lowercase DNS names of two or more labels,
    /// normalised, deduplicated and sorted.
    #[test]
    fn custom_domain_rules() {
        let label = "a".repeat(63);
        let long = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(long.len(), 253);
        let too_long = format!("{label}.{label}.{label}.{}", "b".repeat(62));
        assert_eq!(
            custom_domains(&[
                "Images.Example.COM.".into(),
                "cdn.example.org".into(),
                long.clone(),
            ])
            .unwrap(),
            [long.as_str(), "cdn.example.org", "images.example.com"]
        );
        assert!(custom_domains(&[]).unwrap().is_empty());
        for bad in [
            "",
            "localhost",
            "example..com",
            ".example.com",
            "-a.example.com",
            "a_b.example.com",
            "img.example.com:8080",
            "127.0.0.1",
            "ex ample.com",
            "ü.example.com",
            "*.example.com",
            too_long.as_str(),
        ] {
            assert!(
                matches!(
                    custom_domains(&[bad.to_owned()]),
                    Err(RegistryError::InvalidField {
                        field: "custom_domains",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let twice = custom_domains(&["a.example.com".into(), "A.example.com".into()]);
        assert!(matches!(
            twice,
            Err(RegistryError::InvalidField { field: "custom_domains", problem })
                if problem.contains("listed twice")
        ));
        let many: Vec<String> = (0..33).map(|i| format!("d{i}.example.com")).collect();
        assert!(custom_domains(&many[..32]).is_ok());
        assert!(custom_domains(&many).is_err());
    }
}
