//! Which Source a request is for, from its host name.
//!
//! A Source is served at `<subdomain>.<base-domain>`. The host comes from the
//! request URI's authority when there is one (HTTP/2 `:authority`, or an
//! HTTP/1.1 absolute-form request line) and from the `Host` header otherwise.
//! Only exactly one DNS label in front of the base domain routes; everything
//! else (no host, the bare base domain, nested labels, IP literals) does not.

use std::net::IpAddr;

/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// The host name of a request that routes to a Source: lowercase, without a
/// port, `<subdomain>.<base-domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SourceHost(String);

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
    /// port is stripped; every other character must belong to the label or
    /// the base domain, which also rules out userinfo, spaces and brackets.
    pub(crate) fn parse(raw: &str, base_domain: &str) -> Option<SourceHost> {
        let host = match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => raw,
        };
        let host = host.to_ascii_lowercase();
        if host.parse::<IpAddr>().is_ok() {
            return None;
        }
        let subdomain = host.strip_suffix(base_domain)?.strip_suffix('.')?;
        is_dns_label(subdomain).then_some(SourceHost(host))
    }

    /// The host name, e.g. `demo.localhost`.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lowercases a configured base domain and drops a trailing dot.
pub(crate) fn normalize_base_domain(base_domain: &str) -> String {
    base_domain.trim_end_matches('.').to_ascii_lowercase()
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

    /// Hosts that route and the Source host they give, and hosts that do not.
    #[test]
    fn host_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("demo.localhost", "localhost", Some("demo.localhost")),
            ("demo.localhost:8080", "localhost", Some("demo.localhost")),
            ("DEMO.LocalHost", "localhost", Some("demo.localhost")),
            ("Demo.LOCALHOST:443", "localhost", Some("demo.localhost")),
            // RFC 3986 allows an empty port.
            ("demo.localhost:", "localhost", Some("demo.localhost")),
            (
                "my-site2.localhost",
                "localhost",
                Some("my-site2.localhost"),
            ),
            ("a.localhost", "localhost", Some("a.localhost")),
            (
                "demo.img.example.com",
                "img.example.com",
                Some("demo.img.example.com"),
            ),
            (
                "demo.img.example.com:80",
                "img.example.com",
                Some("demo.img.example.com"),
            ),
            // The bare base domain names no Source.
            ("localhost", "localhost", None),
            ("localhost:8080", "localhost", None),
            (".localhost", "localhost", None),
            // Nested labels.
            ("a.b.localhost", "localhost", None),
            ("a.demo.img.example.com", "img.example.com", None),
            // Other domains, including ones that merely end with the same letters.
            ("demo.example.com", "localhost", None),
            ("demonotlocalhost", "localhost", None),
            ("demo.evillocalhost", "localhost", None),
            ("demo.localhost.evil.com", "localhost", None),
            ("demo.localhost.", "localhost", None),
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
        ];
        for (raw, base, want) in cases {
            let got = SourceHost::parse(raw, base);
            assert_eq!(
                got.as_ref().map(SourceHost::as_str),
                *want,
                "host {raw:?} base {base:?}"
            );
        }
    }

    /// A label of 63 characters routes; 64 does not.
    #[test]
    fn label_length_limit() {
        let ok = format!("{}.localhost", "a".repeat(63));
        let long = format!("{}.localhost", "a".repeat(64));
        assert!(SourceHost::parse(&ok, "localhost").is_some());
        assert!(SourceHost::parse(&long, "localhost").is_none());
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
