//! The rules for every Source field, one function per field.
//!
//! Each function takes the value as a caller sent it and returns the value
//! to store (sometimes normalised, e.g. the path prefix or the endpoint) or
//! [`RegistryError::InvalidField`] naming the field. Messages describe the
//! rule and never repeat the value, so no secret can leak through them.

use imgmesh_proto::registry::v1::CacheTtlBehavior;
use secrecy::SecretString;

use imgmesh_imgix_params::{KeyRefusal, ParamError, check_asset_key, decode_url_path};

use crate::error::RegistryError;

/// Cache TTL used when a Source asks for 0: one year.
pub const DEFAULT_CACHE_TTL_SECONDS: u32 = 31_536_000;

/// Longest cache TTL a Source may ask for: ten years.
pub const MAX_CACHE_TTL_SECONDS: u32 = 10 * DEFAULT_CACHE_TTL_SECONDS;

/// Error TTL used when a Source asks for 0: five minutes (imgix's default).
pub const DEFAULT_CACHE_TTL_ERROR_SECONDS: u32 = 300;

/// Prefix of every Source id; names may not start with it, so an id or name
/// argument is never ambiguous.
pub(crate) const SOURCE_ID_PREFIX: &str = "src_";

const MAX_NAME_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;
const MAX_REGION_LEN: usize = 64;
const MAX_PATH_PREFIX_LEN: usize = 1024;
const MAX_ACCESS_KEY_ID_LEN: usize = 128;
const MAX_SECRET_ACCESS_KEY_LEN: usize = 256;
const MAX_DEFAULT_PARAMS_LEN: usize = 2048;
const MAX_DOMAIN_LEN: usize = 253;
const MAX_CUSTOM_DOMAINS: usize = 32;
const MAX_ASSET_PATH_LEN: usize = 1024;

/// `name`: 1 to 64 of `a-z 0-9 - _`, not starting with `src_`.
pub(crate) fn name(value: &str) -> Result<String, RegistryError> {
    let field = "name";
    if value.is_empty() || value.len() > MAX_NAME_LEN {
        return Err(RegistryError::invalid(field, "must be 1 to 64 characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(RegistryError::invalid(
            field,
            "may contain only lowercase letters, digits, '-' and '_'",
        ));
    }
    if value.starts_with(SOURCE_ID_PREFIX) {
        return Err(RegistryError::invalid(
            field,
            "must not start with 'src_', which is reserved for source ids",
        ));
    }
    Ok(value.to_owned())
}

/// `subdomain`: one DNS label, lowercase.
pub(crate) fn subdomain(value: &str) -> Result<String, RegistryError> {
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

/// `bucket`: the S3 bucket naming rules.
pub(crate) fn bucket(value: &str) -> Result<String, RegistryError> {
    let invalid = |problem: &str| Err(RegistryError::invalid("bucket", problem));
    if value.len() < 3 || value.len() > 63 {
        return invalid("must be 3 to 63 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return invalid("may contain only lowercase letters, digits, '.' and '-'");
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(value.bytes().next()) || !alnum(value.bytes().last()) {
        return invalid("must start and end with a letter or digit");
    }
    if value.contains("..") {
        return invalid("must not contain two adjacent periods");
    }
    if value.parse::<std::net::Ipv4Addr>().is_ok() {
        return invalid("must not be formatted as an ip address");
    }
    if ["xn--", "sthree-"].iter().any(|p| value.starts_with(p)) {
        return invalid("must not start with 'xn--' or 'sthree-'");
    }
    if ["-s3alias", "--ol-s3"].iter().any(|s| value.ends_with(s)) {
        return invalid("must not end with '-s3alias' or '--ol-s3'");
    }
    Ok(value.to_owned())
}

/// `region`: 1 to 64 of `a-z 0-9 -`, e.g. `us-east-1`.
pub(crate) fn region(value: &str) -> Result<String, RegistryError> {
    if value.is_empty()
        || value.len() > MAX_REGION_LEN
        || !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(RegistryError::invalid(
            "region",
            "must be 1 to 64 lowercase letters, digits or '-', e.g. us-east-1",
        ));
    }
    Ok(value.to_owned())
}

/// `endpoint`: empty (AWS S3) or an `http`/`https` URL with a host and
/// nothing after it; returned as `scheme://host[:port]`.
pub(crate) fn endpoint(value: &str) -> Result<String, RegistryError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let invalid = |problem: &str| Err(RegistryError::invalid("endpoint", problem));
    let Ok(url) = url::Url::parse(value) else {
        return invalid("must be an http or https url");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return invalid("must be an http or https url");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return invalid("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("must not contain credentials");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return invalid("must not have a path, query or fragment");
    }
    Ok(url.origin().ascii_serialization())
}

/// `path_prefix`: normalised to segments joined by single slashes, without
/// leading or trailing slash; refuses `.`/`..` segments, backslashes,
/// percent signs and control characters.
pub(crate) fn path_prefix(value: &str) -> Result<String, RegistryError> {
    let invalid = |problem: &str| Err(RegistryError::invalid("path_prefix", problem));
    if value.len() > MAX_PATH_PREFIX_LEN {
        return invalid("must be at most 1024 bytes");
    }
    if value.chars().any(char::is_control) {
        return invalid("must not contain control characters");
    }
    if value.contains('\\') {
        return invalid("must not contain backslashes");
    }
    if value.contains('%') {
        return invalid("must not contain percent signs");
    }
    let segments: Vec<&str> = value.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return invalid("must not contain '.' or '..' segments");
    }
    Ok(segments.join("/"))
}

/// `access_key_id`: 1 to 128 printable ASCII characters without spaces.
pub(crate) fn access_key_id(value: &str) -> Result<String, RegistryError> {
    key_id("access_key_id", value)
}

/// `upload_access_key_id`: the same rule as `access_key_id`.
pub(crate) fn upload_access_key_id(value: &str) -> Result<String, RegistryError> {
    key_id("upload_access_key_id", value)
}

fn key_id(field: &'static str, value: &str) -> Result<String, RegistryError> {
    if value.is_empty()
        || value.len() > MAX_ACCESS_KEY_ID_LEN
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(RegistryError::invalid(
            field,
            "must be 1 to 128 printable ascii characters without spaces",
        ));
    }
    Ok(value.to_owned())
}

/// `secret_access_key`: 1 to 256 characters, no control characters.
pub(crate) fn secret_access_key(value: &str) -> Result<SecretString, RegistryError> {
    secret("secret_access_key", value)
}

/// `upload_secret_access_key`: the same rule as `secret_access_key`.
pub(crate) fn upload_secret_access_key(value: &str) -> Result<SecretString, RegistryError> {
    secret("upload_secret_access_key", value)
}

fn secret(field: &'static str, value: &str) -> Result<SecretString, RegistryError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_SECRET_ACCESS_KEY_LEN || value.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            field,
            "must be 1 to 256 characters without control characters",
        ));
    }
    Ok(SecretString::from(value))
}

/// `custom_domains`: at most 32 distinct DNS names of two or more labels,
/// each at most 253 characters; lowercased, a trailing dot dropped, and
/// returned sorted (the order the registry stores and shows them in).
pub(crate) fn custom_domains(values: &[String]) -> Result<Vec<String>, RegistryError> {
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

/// `cache_ttl_behavior`: one of the enum's values; unspecified means
/// respect_origin.
pub(crate) fn cache_ttl_behavior(value: i32) -> Result<CacheTtlBehavior, RegistryError> {
    match CacheTtlBehavior::try_from(value) {
        Ok(CacheTtlBehavior::Unspecified) => Ok(CacheTtlBehavior::RespectOrigin),
        Ok(behavior) => Ok(behavior),
        Err(_) => Err(RegistryError::invalid(
            "cache_ttl_behavior",
            "must be respect_origin, override_origin or enforce_minimum",
        )),
    }
}

/// `cache_ttl_error_seconds`: 0 means the default (300); at most ten years.
pub(crate) fn cache_ttl_error_seconds(value: u32) -> Result<u32, RegistryError> {
    match value {
        0 => Ok(DEFAULT_CACHE_TTL_ERROR_SECONDS),
        v if v > MAX_CACHE_TTL_SECONDS => Err(RegistryError::invalid(
            "cache_ttl_error_seconds",
            "must be at most 315360000 (ten years)",
        )),
        v => Ok(v),
    }
}

/// `image_missing`: an asset path on the Source (see [`asset_path`]).
pub(crate) fn image_missing(value: &str) -> Result<String, RegistryError> {
    asset_path("image_missing", value)
}

/// `image_error`: an asset path on the Source (see [`asset_path`]).
pub(crate) fn image_error(value: &str) -> Result<String, RegistryError> {
    asset_path("image_error", value)
}

/// An asset path: empty (none), or a URL path of up to 1024 bytes,
/// returned with exactly one leading `/`. The gateway percent-decodes it
/// once into the object key, as it does a request's path, so the key must
/// pass the rule every object key follows ([`check_asset_key`]: no leading
/// `/` or `\`, no `..` segment, no control characters); spaces, `%XX`,
/// `+`, backslashes, empty and `.` segments are keys S3 stores. A literal
/// `?` or `#` would end a URL path, so those characters are written
/// `%3F` and `%23`.
pub(crate) fn asset_path(field: &'static str, value: &str) -> Result<String, RegistryError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let invalid = |problem: &str| Err(RegistryError::invalid(field, problem));
    if value.len() > MAX_ASSET_PATH_LEN {
        return invalid("must be at most 1024 bytes");
    }
    if value.contains(['?', '#']) {
        return invalid("must be a path: write '?' as %3F and '#' as %23");
    }
    let path = value.strip_prefix('/').unwrap_or(value);
    let Some(key) = decode_url_path(path) else {
        return invalid("must percent-decode to UTF-8 (write '%' as %25)");
    };
    if let Err(refusal) = check_asset_key(&key) {
        let problem = match refusal {
            KeyRefusal::Empty => "must name a file, e.g. /missing.png",
            KeyRefusal::LeadingSlash => "must not start with '//' or a backslash",
            KeyRefusal::ParentSegment => "must not contain '..' segments",
            KeyRefusal::ControlCharacter => "must not contain control characters",
        };
        return invalid(problem);
    }
    Ok(format!("/{path}"))
}

/// `default_params`: empty, or up to 2048 characters of `key=value` pairs
/// joined by `&` (a leading `?` is dropped), printable ASCII without `#`,
/// every key an imgix parameter (name, alias or base64 form) with a value
/// the parameter spec allows (checked by `imgmesh-imgix-params`).
pub(crate) fn default_params(value: &str) -> Result<String, RegistryError> {
    let value = value.strip_prefix('?').unwrap_or(value);
    if value.is_empty() {
        return Ok(String::new());
    }
    let invalid = |problem: &str| Err(RegistryError::invalid("default_params", problem));
    if value.len() > MAX_DEFAULT_PARAMS_LEN {
        return invalid("must be at most 2048 characters");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return invalid("must be printable ascii without spaces or '#'");
    }
    for pair in value.split('&') {
        match pair.split_once('=') {
            Some((key, val)) if !key.is_empty() && !val.is_empty() => {}
            _ => return invalid("must be key=value pairs joined by '&', e.g. auto=format&q=75"),
        }
    }
    imgmesh_imgix_params::validate_default_params(value).map_err(|error| {
        let problem = match error {
            ParamError::UnknownParameter { name } => format!("unknown parameter {name:?}"),
            other => other.to_string(),
        };
        RegistryError::invalid("default_params", problem)
    })?;
    Ok(value.to_owned())
}

/// `cache_ttl_seconds`: 0 means the default (one year); at most ten years.
pub(crate) fn cache_ttl_seconds(value: u32) -> Result<u32, RegistryError> {
    match value {
        0 => Ok(DEFAULT_CACHE_TTL_SECONDS),
        v if v > MAX_CACHE_TTL_SECONDS => Err(RegistryError::invalid(
            "cache_ttl_seconds",
            "must be at most 315360000 (ten years)",
        )),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// A rule under test.
    type Check = fn(&str) -> Result<String, RegistryError>;

    /// Asserts `check` accepts every `good` value unchanged and refuses every
    /// `bad` one with an error naming `field`.
    fn table(field: &str, check: Check, good: &[&str], bad: &[&str]) {
        for value in good {
            assert_eq!(
                check(value).as_deref().ok(),
                Some(*value),
                "{field}: {value:?}"
            );
        }
        for value in bad {
            match check(value) {
                Err(RegistryError::InvalidField { field: f, .. }) => {
                    assert_eq!(f, field, "{value:?}");
                }
                other => panic!("{field}: {value:?} accepted as {other:?}"),
            }
        }
    }

    /// Names are 1..64 of [a-z0-9-_] and never look like ids.
    #[test]
    fn name_rules() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        table(
            "name",
            name,
            &[
                "demo",
                "a",
                "shop-eu_2",
                "0",
                long.as_str(),
                "src-x",
                "source_1",
            ],
            &[
                "",
                too_long.as_str(),
                "Demo",
                "de mo",
                "dé",
                "a.b",
                "a/b",
                "src_0123456789ab",
            ],
        );
    }

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

    /// Buckets follow the S3 naming rules.
    #[test]
    fn bucket_rules() {
        let long = "b".repeat(63);
        let too_long = "b".repeat(64);
        table(
            "bucket",
            bucket,
            &[
                "images",
                "abc",
                "my.bucket-1",
                "1bucket",
                long.as_str(),
                "192.168.5",
            ],
            &[
                "ab",
                too_long.as_str(),
                "Images",
                "my_bucket",
                "-bucket",
                "bucket-",
                ".bucket",
                "bucket.",
                "my..bucket",
                "192.168.5.4",
                "xn--bucket",
                "sthree-bucket",
                "bucket-s3alias",
                "bucket--ol-s3",
                "buc ket",
            ],
        );
    }

    /// Regions are non-empty [a-z0-9-].
    #[test]
    fn region_rules() {
        table(
            "region",
            region,
            &["us-east-1", "eu-central-2", "garage", "auto"],
            &["", "US-EAST-1", "us_east_1", "us east", &"r".repeat(65)],
        );
    }

    /// Endpoints are http(s) URLs with a host and nothing after it.
    #[test]
    fn endpoint_rules() {
        table(
            "endpoint",
            endpoint,
            &[
                "",
                "http://127.0.0.1:9000",
                "https://s3.example.com",
                "http://[::1]:9000",
            ],
            &[
                "127.0.0.1:9000",
                "ftp://example.com",
                "http://",
                "https://example.com/bucket",
                "https://example.com/?x=1",
                "https://example.com/#top",
                "https://user:pass@example.com",
                "not a url",
                "file:///etc/passwd",
            ],
        );
    }

    /// Endpoints are normalised to scheme://host[:port].
    #[test]
    fn endpoint_is_normalised() {
        assert_eq!(
            endpoint("HTTP://S3.Example.COM/").unwrap(),
            "http://s3.example.com"
        );
        assert_eq!(
            endpoint("https://s3.example.com:443").unwrap(),
            "https://s3.example.com"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9000/").unwrap(),
            "http://127.0.0.1:9000"
        );
    }

    /// Path prefixes lose outer slashes, collapse `//` and refuse escapes.
    #[test]
    fn path_prefix_rules() {
        for (given, stored) in [
            ("", ""),
            ("/", ""),
            ("photos", "photos"),
            ("/photos/", "photos"),
            ("a//b///c", "a/b/c"),
            ("//a/b//", "a/b"),
            ("dir.v2/x..y/ü", "dir.v2/x..y/ü"),
        ] {
            assert_eq!(path_prefix(given).unwrap(), stored, "{given:?}");
        }
        let too_long = "a".repeat(1025);
        table(
            "path_prefix",
            path_prefix,
            &[],
            &[
                "..", "a/../b", "./a", "a/.", "a\\b", "a%2e", "a\nb", "a\0b", "a\u{85}b", &too_long,
            ],
        );
    }

    /// Access key ids are 1..128 printable ASCII without spaces.
    #[test]
    fn access_key_id_rules() {
        table(
            "access_key_id",
            access_key_id,
            &["AK", "AKIAIOSFODNN7EXAMPLE", &"K".repeat(128), "a+b/c="],
            &["", "AK IA", "AKé", "AK\t", &"K".repeat(129)],
        );
    }

    /// Secret keys are 1..256 characters without control characters, and the
    /// error never repeats the secret.
    #[test]
    fn secret_access_key_rules() {
        for good in [
            "S",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            &"s".repeat(256),
            "ü ü",
        ] {
            assert_eq!(secret_access_key(good).unwrap().expose_secret(), good);
        }
        for bad in ["", &"s".repeat(257), "line\nbreak-secret"] {
            let error = secret_access_key(bad).unwrap_err();
            assert!(matches!(
                error,
                RegistryError::InvalidField {
                    field: "secret_access_key",
                    ..
                }
            ));
            if !bad.is_empty() {
                assert!(!error.to_string().contains(bad));
            }
        }
    }

    /// Default params are k=v pairs of printable ASCII, at most 2048 long.
    #[test]
    fn default_params_rules() {
        let long = format!("q={}", "7".repeat(2046));
        let too_long = format!("q={}", "7".repeat(2047));
        table(
            "default_params",
            default_params,
            &[
                "",
                "auto=format",
                "auto=format&q=75",
                "fit=crop&crop=faces,edges",
                long.as_str(),
            ],
            &[
                "auto",
                "=format",
                "q=",
                "a=1&&b=2",
                "a=1&",
                "q=7 5",
                "q=7#x",
                "txt=é",
                "a=1\n",
                too_long.as_str(),
            ],
        );
        assert_eq!(default_params("?auto=format").unwrap(), "auto=format");
    }

    /// Default params may only name imgix parameters (names, aliases,
    /// base64 forms) with values the spec allows; the error names the
    /// unknown parameter or the bad value.
    #[test]
    fn default_params_know_the_imgix_spec() {
        for good in [
            "w=100&f=crop",
            "txt64=aGVsbG8",
            "or=90&width=3",
            "bm=normal",
        ] {
            assert_eq!(default_params(good).unwrap(), good);
        }
        for (bad, unknown) in [
            ("x=1", "x"),
            ("w=100&frobnicate=2", "frobnicate"),
            ("auto64=Zm9ybWF0", "auto64"),
        ] {
            match default_params(bad) {
                Err(RegistryError::InvalidField {
                    field: "default_params",
                    problem,
                }) => assert_eq!(problem, format!("unknown parameter \"{unknown}\"")),
                other => panic!("{bad}: {other:?}"),
            }
        }
        for (bad, problem) in [
            ("fit=sideways", "fit: unsupported value \"sideways\""),
            ("w=abc", "w: unsupported value \"abc\""),
        ] {
            match default_params(bad) {
                Err(RegistryError::InvalidField {
                    field: "default_params",
                    problem: p,
                }) => assert_eq!(p, problem),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    /// Upload key ids and secrets follow the read credentials' rules under
    /// their own field names.
    #[test]
    fn upload_credential_rules() {
        table(
            "upload_access_key_id",
            upload_access_key_id,
            &["AKIAUPLOAD"],
            &["", "A B", &"K".repeat(129)],
        );
        assert!(upload_secret_access_key("s").is_ok());
        assert!(matches!(
            upload_secret_access_key("a\tb"),
            Err(RegistryError::InvalidField {
                field: "upload_secret_access_key",
                ..
            })
        ));
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

    /// Unspecified behaviour means respect_origin; unknown values are refused.
    #[test]
    fn cache_ttl_behavior_rules() {
        assert_eq!(
            cache_ttl_behavior(0).unwrap(),
            CacheTtlBehavior::RespectOrigin
        );
        for behavior in [
            CacheTtlBehavior::RespectOrigin,
            CacheTtlBehavior::OverrideOrigin,
            CacheTtlBehavior::EnforceMinimum,
        ] {
            assert_eq!(cache_ttl_behavior(behavior.into()).unwrap(), behavior);
        }
        for bad in [4, -1, 99] {
            assert!(matches!(
                cache_ttl_behavior(bad),
                Err(RegistryError::InvalidField {
                    field: "cache_ttl_behavior",
                    ..
                })
            ));
        }
    }

    /// An error TTL of 0 becomes 300; more than ten years is refused.
    #[test]
    fn cache_ttl_error_rules() {
        assert_eq!(cache_ttl_error_seconds(0).unwrap(), 300);
        assert_eq!(cache_ttl_error_seconds(60).unwrap(), 60);
        assert!(matches!(
            cache_ttl_error_seconds(MAX_CACHE_TTL_SECONDS + 1),
            Err(RegistryError::InvalidField {
                field: "cache_ttl_error_seconds",
                ..
            })
        ));
    }

    /// image_missing and image_error are URL paths on the Source, held to
    /// the one object-key rule after decoding; they gain one leading slash.
    #[test]
    fn asset_path_rules() {
        for (given, stored) in [
            ("", ""),
            ("missing.png", "/missing.png"),
            ("/missing.png", "/missing.png"),
            ("/errors/v2/broken.jpg", "/errors/v2/broken.jpg"),
            ("/dir.v2/x..y.png", "/dir.v2/x..y.png"),
            ("/a b.png", "/a b.png"),
            ("/a%20b.png", "/a%20b.png"),
            ("/100%25.png", "/100%25.png"),
            ("/a/./b.png", "/a/./b.png"),
            ("/a//b.png", "/a//b.png"),
            ("/a\\b.png", "/a\\b.png"),
            ("/dir/", "/dir/"),
        ] {
            assert_eq!(image_missing(given).unwrap(), stored, "{given:?}");
            assert_eq!(image_error(given).unwrap(), stored, "{given:?}");
        }
        let long = format!("/{}", "a".repeat(1023));
        assert_eq!(image_missing(&long).unwrap(), long);
        let too_long = format!("/{}", "a".repeat(1024));
        let checks: [(&str, Check); 2] = [
            ("image_missing", image_missing),
            ("image_error", image_error),
        ];
        for (field, check) in checks {
            table(
                field,
                check,
                &[],
                &[
                    "/",
                    "//evil.example.com/x.png",
                    "/\\evil.png",
                    "/%5Cevil.png",
                    "/../secret.png",
                    "/a/../../b.png",
                    "/a/..\\..\\b.png",
                    "/a%2e%2e/../b.png",
                    "/%2e%2e/b.png",
                    "/a.png?w=10",
                    "/a.png#x",
                    "/100%.png",
                    "/a\nb.png",
                    "/a%0Ab.png",
                    too_long.as_str(),
                ],
            );
        }
    }

    /// A TTL of 0 becomes the default; more than ten years is refused.
    #[test]
    fn cache_ttl_rules() {
        assert_eq!(cache_ttl_seconds(0).unwrap(), DEFAULT_CACHE_TTL_SECONDS);
        assert_eq!(cache_ttl_seconds(1).unwrap(), 1);
        assert_eq!(
            cache_ttl_seconds(MAX_CACHE_TTL_SECONDS).unwrap(),
            315_360_000
        );
        assert!(matches!(
            cache_ttl_seconds(MAX_CACHE_TTL_SECONDS + 1),
            Err(RegistryError::InvalidField {
                field: "cache_ttl_seconds",
                ..
            })
        ));
    }
}
