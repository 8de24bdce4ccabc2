//! Which Source a request is for, from its host name.
//!
//! A Source is served at `<subdomain>.<base-domain>` and at each of its
//! custom domains. The host comes from the request URI's authority when
//! there is one (HTTP/2 `:authority`, or an HTTP/1.1 absolute-form request
//! line) and from the `Host` header otherwise. Under the base domain only
//! exactly one DNS label in front of it routes (to that subdomain); a host
//! outside the base domain is a custom domain the registry must know
//! exactly. No host, the bare base domain, nested labels under it, IP
//! literals and malformed names route nowhere.

use std::net::IpAddr;

/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;
/// Longest host name (RFC 1035, without the trailing dot).
const MAX_HOST_LEN: usize = 253;

/// The host name of a request that may route to a Source: lowercase,
/// without a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SourceHost {
    name: String,
    custom_domain: bool,
}

// === impl SourceHost ===

impl SourceHost {
    /// Finds the Source host of a request for `base_domain` (already
    /// lowercase, see [`normalize_base_domain`]), or `None` when the request
    /// does not name one.
    pub(crate) fn of_request(
        uri: &http::Uri,
        headers: &http::HeaderMap,
        base_domain: &str,
    ) -> Option<SourceHost> {
        let raw = match uri.authority() {
            Some(authority) => authority.as_str(),
            None => headers.get(http::header::HOST)?.to_str().ok()?,
        };
        SourceHost::parse(raw, base_domain)
    }

    /// Parses a `Host` value (`name[:port]`) for `base_domain`. Only the
    /// port is stripped; every other character must belong to a DNS name,
    /// which also rules out userinfo, spaces, brackets and trailing dots.
    pub(crate) fn parse(raw: &str, base_domain: &str) -> Option<SourceHost> {
        let host = match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => raw,
        };
        let host = host.to_ascii_lowercase();
        if host.parse::<IpAddr>().is_ok() || !is_host_name(&host) {
            return None;
        }
        match host.strip_suffix(base_domain) {
            // Under the base domain: exactly one label routes, as a subdomain.
            Some(rest) if rest.is_empty() || rest.ends_with('.') => {
                let subdomain = rest.strip_suffix('.')?;
                is_dns_label(subdomain).then_some(SourceHost {
                    name: host,
                    custom_domain: false,
                })
            }
            // Elsewhere (including names that merely end with the same
            // letters, like `evillocalhost`): a custom domain.
            _ => Some(SourceHost {
                name: host,
                custom_domain: true,
            }),
        }
    }

    /// The host name, e.g. `demo.localhost` or `images.example.com`.
    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether the host lies outside the base domain and must match a
    /// Source's custom domain exactly.
    pub(crate) fn is_custom_domain(&self) -> bool {
        self.custom_domain
    }
}

/// Lowercases a configured base domain and drops a trailing dot.
pub(crate) fn normalize_base_domain(base_domain: &str) -> String {
    base_domain.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` is a DNS name: dot-separated labels, at most 253 bytes.
fn is_host_name(host: &str) -> bool {
    host.len() <= MAX_HOST_LEN && host.split('.').all(is_dns_label)
}

/// Whether `label` is one DNS label: 1..=63 of `a-z0-9-`, no dash at either end.
fn is_dns_label(label: &str) -> bool {
    (1..=MAX_LABEL_LEN).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a host routes: its name and whether it is a custom domain.
    type Route<'a> = Option<(&'a str, bool)>;

    /// Routes to a subdomain under the base domain.
    fn sub(host: &str) -> Route<'_> {
        Some((host, false))
    }

    /// Routes to a custom domain.
    fn custom(host: &str) -> Route<'_> {
        Some((host, true))
    }

    /// Hosts that route to a subdomain or a custom domain, and hosts that route nowhere.
    #[test]
    fn host_table() {
        let cases: &[(&str, &str, Route<'_>)] = &[
            ("demo.localhost", "localhost", sub("demo.localhost")),
            ("demo.localhost:8080", "localhost", sub("demo.localhost")),
            ("DEMO.LocalHost", "localhost", sub("demo.localhost")),
            ("Demo.LOCALHOST:443", "localhost", sub("demo.localhost")),
            // RFC 3986 allows an empty port.
            ("demo.localhost:", "localhost", sub("demo.localhost")),
            ("my-site2.localhost", "localhost", sub("my-site2.localhost")),
            ("a.localhost", "localhost", sub("a.localhost")),
            (
                "demo.img.example.com",
                "img.example.com",
                sub("demo.img.example.com"),
            ),
            (
                "demo.img.example.com:80",
                "img.example.com",
                sub("demo.img.example.com"),
            ),
            // The bare base domain names no Source.
            ("localhost", "localhost", None),
            ("localhost:8080", "localhost", None),
            (".localhost", "localhost", None),
            // Nested labels under the base domain.
            ("a.b.localhost", "localhost", None),
            ("a.demo.img.example.com", "img.example.com", None),
            // Hosts outside the base domain are custom domains, matched exactly.
            ("demo.example.com", "localhost", custom("demo.example.com")),
            (
                "Images.Example.COM:8443",
                "localhost",
                custom("images.example.com"),
            ),
            ("demonotlocalhost", "localhost", custom("demonotlocalhost")),
            (
                "demo.evillocalhost",
                "localhost",
                custom("demo.evillocalhost"),
            ),
            (
                "demo.localhost.evil.com",
                "localhost",
                custom("demo.localhost.evil.com"),
            ),
            ("example.com", "img.example.com", custom("example.com")),
            // Trailing dots are not normalised away.
            ("demo.localhost.", "localhost", None),
            ("images.example.com.", "localhost", None),
            // IP literals.
            ("127.0.0.1", "localhost", None),
            ("127.0.0.1:8080", "localhost", None),
            ("[::1]", "localhost", None),
            ("[::1]:8080", "localhost", None),
            ("10.0.0.1", "0.1", None),
            // Malformed hosts and labels.
            ("", "localhost", None),
            ("demo.localhost:port", "localhost", None),
            ("demo.localhost:80:90", "localhost", None),
            ("demo.localhost:-1", "localhost", None),
            ("user@demo.localhost", "localhost", None),
            ("de mo.localhost", "localhost", None),
            ("de_mo.localhost", "localhost", None),
            ("-demo.localhost", "localhost", None),
            ("demo-.localhost", "localhost", None),
            ("dém.localhost", "localhost", None),
            ("images..example.com", "localhost", None),
            ("images/x.example.com", "localhost", None),
            ("images.example.com%00", "localhost", None),
        ];
        for (raw, base, want) in cases {
            let got = SourceHost::parse(raw, base);
            let got = got.as_ref().map(|h| (h.as_str(), h.is_custom_domain()));
            assert_eq!(got, *want, "host {raw:?} base {base:?}");
        }
    }

    /// A label of 63 characters routes; 64 does not; a custom domain is at most 253 bytes.
    #[test]
    fn length_limits() {
        let ok = format!("{}.localhost", "a".repeat(63));
        let long = format!("{}.localhost", "a".repeat(64));
        assert!(SourceHost::parse(&ok, "localhost").is_some());
        assert!(SourceHost::parse(&long, "localhost").is_none());

        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(longest.len(), 253);
        assert!(SourceHost::parse(&longest, "localhost").is_some());
        assert!(SourceHost::parse(&format!("c{longest}"), "localhost").is_none());
    }

    /// HTTP/2 requests carry the host in the URI; HTTP/1.1 ones in the Host header.
    #[test]
    fn host_from_uri_authority_or_header() {
        let mut headers = http::HeaderMap::new();
        let h2_uri: http::Uri = "https://demo.localhost:8443/a.jpg".parse().unwrap();
        assert_eq!(
            SourceHost::of_request(&h2_uri, &headers, "localhost")
                .unwrap()
                .as_str(),
            "demo.localhost"
        );
        let h1_uri: http::Uri = "/a.jpg".parse().unwrap();
        assert_eq!(SourceHost::of_request(&h1_uri, &headers, "localhost"), None);
        headers.insert(http::header::HOST, "Shop.localhost:8080".parse().unwrap());
        assert_eq!(
            SourceHost::of_request(&h1_uri, &headers, "localhost")
                .unwrap()
                .as_str(),
            "shop.localhost"
        );
        // The URI's authority wins over the header (RFC 9112 §3.2.2).
        assert_eq!(
            SourceHost::of_request(&h2_uri, &headers, "localhost")
                .unwrap()
                .as_str(),
            "demo.localhost"
        );
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_bytes(b"\xffx.localhost").unwrap(),
        );
        assert_eq!(SourceHost::of_request(&h1_uri, &headers, "localhost"), None);
    }

    /// A configured base domain is compared case-insensitively and without a trailing dot.
    #[test]
    fn base_domain_is_normalized() {
        assert_eq!(normalize_base_domain("Img.Example.COM."), "img.example.com");
        assert_eq!(normalize_base_domain("localhost"), "localhost");
    }
}
