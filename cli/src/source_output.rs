//! How Sources are printed: JSON for scripts (`--json`), a key: value
//! listing or a table for people.

use imgmesh_proto::registry::v1::{Source, UploadObjectResponse};
use serde::Serialize;

pub use imgmesh_proto::json::{SourceJson, cache_ttl_behavior_name, status_name};

/// What `--json` prints after a delete.
#[derive(Debug, Serialize)]
struct DeletedJson<'a> {
    deleted: &'a str,
}

/// One Source: pretty JSON, or `key: value` lines.
pub fn render_source(source: &Source, json: bool) -> String {
    if json {
        return to_json(&SourceJson::from(source));
    }
    let or_dash = |value: &str| {
        if value.is_empty() {
            "-".to_owned()
        } else {
            value.to_owned()
        }
    };
    let with_params = |path: &str, append: bool| {
        if path.is_empty() {
            "-".to_owned()
        } else if append {
            format!("{path} (request params appended)")
        } else {
            path.to_owned()
        }
    };
    let on_off = |on: bool| if on { "on" } else { "off" }.to_owned();
    let mut status = status_name(source.deploy_state().status()).to_owned();
    if !source.deploy_state().message.is_empty() {
        status.push_str(&format!(" ({})", source.deploy_state().message));
    }
    let rows = [
        ("id", source.id.clone()),
        ("name", source.name.clone()),
        ("status", status),
        (
            "enabled",
            if source.enabled {
                "yes"
            } else {
                "no (answers 410)"
            }
            .to_owned(),
        ),
        (
            "last deployed",
            if source.deploy_state().last_deployed_at == 0 {
                "never".to_owned()
            } else {
                format_unix_time(source.deploy_state().last_deployed_at)
            },
        ),
        ("subdomain", source.routing().subdomain.clone()),
        (
            "custom domains",
            or_dash(&source.routing().custom_domains.join(", ")),
        ),
        ("bucket", source.location().bucket.clone()),
        ("region", source.location().region.clone()),
        ("endpoint", or_dash(&source.location().endpoint)),
        ("path prefix", or_dash(&source.location().path_prefix)),
        ("access key id", source.access_key().id_hint.clone()),
        (
            "upload key id",
            or_dash(&source.upload_access_key().id_hint),
        ),
        ("default params", or_dash(&source.default_params)),
        (
            "cache ttl",
            format!("{}s", source.cache_policy().ttl_seconds),
        ),
        (
            "ttl behavior",
            cache_ttl_behavior_name(source.cache_policy().behavior()).to_owned(),
        ),
        (
            "error ttl",
            format!("{}s", source.cache_policy().error_ttl_seconds),
        ),
        (
            "image missing",
            with_params(
                &source.fallback_images().missing().path,
                source.fallback_images().missing().append_params,
            ),
        ),
        (
            "image error",
            with_params(
                &source.fallback_images().error().path,
                source.fallback_images().error().append_params,
            ),
        ),
        (
            "secure urls",
            format!(
                "{} ({} active token(s))",
                on_off(source.secure_url_enabled),
                source.active_secure_tokens
            ),
        ),
        ("config version", source.config_version.to_string()),
        ("created", format_unix_time(source.created_at)),
        ("updated", format_unix_time(source.updated_at)),
    ];
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&format!("{:<15} {value}\n", format!("{key}:")));
    }
    out
}

/// Many Sources: a pretty JSON array, or an aligned table.
pub fn render_list(sources: &[Source], json: bool) -> String {
    if json {
        let sources: Vec<SourceJson> = sources.iter().map(SourceJson::from).collect();
        return to_json(&sources);
    }
    if sources.is_empty() {
        return "no sources\n".to_owned();
    }
    let header = [
        "ID",
        "NAME",
        "STATUS",
        "SUBDOMAIN",
        "BUCKET",
        "REGION",
        "PREFIX",
        "VERSION",
    ];
    let rows: Vec<[String; 8]> = sources
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.name.clone(),
                if s.enabled {
                    status_name(s.deploy_state().status()).to_owned()
                } else {
                    format!("{} (disabled)", status_name(s.deploy_state().status()))
                },
                s.routing().subdomain.clone(),
                s.location().bucket.clone(),
                s.location().region.clone(),
                if s.location().path_prefix.is_empty() {
                    "-".to_owned()
                } else {
                    s.location().path_prefix.clone()
                },
                s.config_version.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[&str]| {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_row(&header);
    for row in &rows {
        push_row(&row.each_ref().map(String::as_str));
    }
    out
}

/// The confirmation of a delete.
pub fn render_deleted(id_or_name: &str, json: bool) -> String {
    if json {
        to_json(&DeletedJson {
            deleted: id_or_name,
        })
    } else {
        format!("deleted source {id_or_name}\n")
    }
}

/// The new token of `sources rotate-token`, shown this once.
pub fn render_rotated_token(
    token: &str,
    source: &Source,
    grace_seconds: u32,
    json: bool,
) -> String {
    if json {
        return to_json(&serde_json::json!({
            "token": token,
            "source": SourceJson::from(source),
        }));
    }
    let retired = if grace_seconds == 0 {
        "the previous tokens stopped working now".to_owned()
    } else {
        format!("the previous tokens keep working for {grace_seconds} s")
    };
    format!(
        "new secure url token for {} (store it now: it is never shown again):\n{token}\n\
         {retired}; {} token(s) active\n",
        source.name, source.active_secure_tokens
    )
}

/// The confirmation of `imgmesh upload`.
pub fn render_uploaded(source: &str, stored: &UploadObjectResponse, json: bool) -> String {
    if json {
        return to_json(&serde_json::json!({
            "key": stored.key,
            "etag": stored.etag,
            "size": stored.size,
        }));
    }
    format!(
        "uploaded {} bytes to {source} as {}\n",
        stored.size, stored.key
    )
}

/// Pretty JSON and a newline.
pub(crate) fn to_json(value: &impl Serialize) -> String {
    // Serialising plain strings and integers cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_unix_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::registry::v1::{
        AccessKeyHint, CachePolicy, CacheTtlBehavior, DeployState, FallbackImage, FallbackImages,
        Location, Routing, SourceStatus,
    };

    use super::*;

    fn source() -> Source {
        Source {
            id: "src_4f0c2a9d1b7e".into(),
            name: "demo".into(),
            routing: Some(Routing {
                subdomain: "demo".into(),
                custom_domains: vec!["img.example.com".into()],
            }),
            location: Some(Location {
                bucket: "images".into(),
                region: "us-east-1".into(),
                endpoint: "http://127.0.0.1:9000".into(),
                path_prefix: "photos".into(),
            }),
            access_key: Some(AccessKeyHint {
                id_hint: "…MPLE".into(),
            }),
            default_params: "auto=format".into(),
            cache_policy: Some(CachePolicy {
                ttl_seconds: 31_536_000,
                behavior: CacheTtlBehavior::EnforceMinimum.into(),
                error_ttl_seconds: 300,
            }),
            config_version: 3,
            created_at: 1_700_000_000,
            updated_at: 1_700_000_060,
            fallback_images: Some(FallbackImages {
                missing: Some(FallbackImage {
                    path: "/missing.png".into(),
                    append_params: true,
                }),
                error: Some(FallbackImage::default()),
            }),
            secure_url_enabled: true,
            enabled: true,
            deploy_state: Some(DeployState {
                status: SourceStatus::Failed.into(),
                message: "missing s3:ListBucket".into(),
                last_deployed_at: 1_700_000_100,
            }),
            upload_access_key: Some(AccessKeyHint {
                id_hint: "…LOAD".into(),
            }),
            active_secure_tokens: 2,
        }
    }

    /// --json prints exactly the Source message's fields, by the same names.
    #[test]
    fn source_json_mirrors_the_message() {
        let value: serde_json::Value =
            serde_json::from_str(&render_source(&source(), true)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "id": "src_4f0c2a9d1b7e",
                "name": "demo",
                "subdomain": "demo",
                "bucket": "images",
                "region": "us-east-1",
                "endpoint": "http://127.0.0.1:9000",
                "path_prefix": "photos",
                "access_key_id_hint": "…MPLE",
                "default_params": "auto=format",
                "cache_ttl_seconds": 31_536_000,
                "config_version": 3,
                "created_at": 1_700_000_000,
                "updated_at": 1_700_000_060,
                "custom_domains": ["img.example.com"],
                "cache_ttl_behavior": "enforce_minimum",
                "cache_ttl_error_seconds": 300,
                "image_missing": "/missing.png",
                "image_missing_append_params": true,
                "image_error": "",
                "image_error_append_params": false,
                "secure_url_enabled": true,
                "enabled": true,
                "status": "failed",
                "status_message": "missing s3:ListBucket",
                "last_deployed_at": 1_700_000_100,
                "upload_access_key_id_hint": "…LOAD",
                "active_secure_tokens": 2,
            })
        );
    }

    /// --json prints a list as an array of Sources, in order.
    #[test]
    fn list_json_is_an_array() {
        let other = Source {
            name: "shop".into(),
            ..source()
        };
        let value: serde_json::Value =
            serde_json::from_str(&render_list(&[source(), other], true)).unwrap();
        let names: Vec<&str> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["demo", "shop"]);
        assert_eq!(render_list(&[], true), "[]\n");
    }

    /// The text form lists every field, with "-" for empty ones.
    #[test]
    fn source_text_lists_fields() {
        let text = render_source(
            &{
                let mut source = source();
                source.location.get_or_insert_default().endpoint = String::new();
                source
            },
            false,
        );
        assert!(
            text.contains("id:             src_4f0c2a9d1b7e\n"),
            "{text}"
        );
        assert!(text.contains("endpoint:       -\n"), "{text}");
        assert!(text.contains("access key id:  …MPLE\n"), "{text}");
        assert!(text.contains("cache ttl:      31536000s\n"), "{text}");
        assert!(
            text.contains("created:        2023-11-14 22:13:20 UTC\n"),
            "{text}"
        );
        assert!(
            text.contains("status:         failed (missing s3:ListBucket)\n"),
            "{text}"
        );
        assert!(text.contains("custom domains: img.example.com\n"), "{text}");
        assert!(
            text.contains("image missing:  /missing.png (request params appended)\n"),
            "{text}"
        );
        assert!(text.contains("image error:    -\n"), "{text}");
        assert!(
            text.contains("secure urls:    on (2 active token(s))\n"),
            "{text}"
        );
        assert!(text.contains("ttl behavior:   enforce_minimum\n"), "{text}");
        assert_eq!(text.lines().count(), 23);
    }

    /// The table has a header and one aligned row per Source.
    #[test]
    fn list_text_is_a_table() {
        let mut long = Source {
            name: "a-much-longer-name".into(),
            ..source()
        };
        long.location.get_or_insert_default().path_prefix = String::new();
        let text = render_list(&[source(), long], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("ID                NAME                STATUS  SUBDOMAIN"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("src_4f0c2a9d1b7e  demo                failed  demo"),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains("a-much-longer-name  failed  demo"));
        assert!(lines[2].contains("  -  "), "{}", lines[2]);
        assert_eq!(render_list(&[], false), "no sources\n");
    }

    /// A delete prints a confirmation, as JSON with --json.
    #[test]
    fn deleted_output() {
        assert_eq!(render_deleted("demo", false), "deleted source demo\n");
        let value: serde_json::Value = serde_json::from_str(&render_deleted("demo", true)).unwrap();
        assert_eq!(value, serde_json::json!({"deleted": "demo"}));
    }

    /// Unix times format as UTC calendar dates, before and after 1970 too.
    #[test]
    fn unix_times_format_as_utc() {
        assert_eq!(format_unix_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_unix_time(-1), "1969-12-31 23:59:59 UTC");
    }
}
