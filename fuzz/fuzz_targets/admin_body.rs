//! The admin API's JSON request bodies, read exactly as the handlers read
//! them (`serde_json` into a value, then field by field), on arbitrary
//! bytes. The first byte picks the endpoint: create a Source, update one,
//! rotate its token, purge; the rest is the body.
//!
//! What must hold:
//!
//! - a body is a request or a 400 that names a field, never a panic;
//! - a body that is not JSON (and not blank: blank is an empty object) is
//!   refused without quoting it (it may hold a secret): the message only
//!   says where the JSON broke;
//! - a secret put into an object body is passed on as it is when the body
//!   is accepted, and appears in no refusal;
//! - an update never renames a Source;
//! - a purge names exactly one target, and a path it purges is an asset
//!   path the image handler would serve (decoded, no `..` segment, no
//!   leading separator).

use imgmesh_gateway::fuzzing::{
    BodyRefusal, PurgeTarget, asset_path, create_source_body, purge_body, rotate_token_body,
    update_source_body,
};
use serde_json::Value;

const CANARY: &str = "hunter2-canary-7f3a";

fn check_refusal(refusal: &BodyRefusal, body: &[u8]) {
    assert_eq!(refusal.status.as_u16(), 400, "{refusal:?}");
    let field = refusal.field.as_deref().expect("a refusal names its field");
    assert!(
        refusal.message.starts_with(&format!("{field}: ")),
        "{refusal:?}"
    );
    // A blank body (ASCII whitespace, as the handlers define it) is an
    // empty object, so only a body with content can be a JSON error.
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if !blank && serde_json::from_slice::<Value>(body).is_err() {
        assert_eq!(field, "body", "{refusal:?}");
        let problem = &refusal.message["body: ".len()..];
        let quotes_nothing = problem == "must be a JSON object"
            || problem == "could not be read"
            || problem
                .strip_prefix("invalid JSON at line ")
                .and_then(|rest| rest.split_once(" column "))
                .is_some_and(|(line, column)| {
                    line.parse::<u64>().is_ok() && column.parse::<u64>().is_ok()
                });
        assert!(quotes_nothing, "{refusal:?}");
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&endpoint, body)) = data.split_first() else {
            return;
        };
        match endpoint % 4 {
            0 => {
                if let Err(refusal) = create_source_body(body) {
                    check_refusal(&refusal, body);
                }
                // The same object with a secret in it.
                if let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body)
                    && !fields.keys().any(|key| key.contains("canary"))
                {
                    fields.insert("secret_access_key".to_owned(), CANARY.into());
                    let with_secret = Value::Object(fields).to_string();
                    match create_source_body(with_secret.as_bytes()) {
                        Ok(request) => {
                            assert_eq!(request.access_key.unwrap_or_default().secret, CANARY);
                        }
                        Err(refusal) => {
                            check_refusal(&refusal, with_secret.as_bytes());
                            assert!(!format!("{refusal:?}").contains(CANARY), "{refusal:?}");
                        }
                    }
                }
            }
            1 => {
                let renames = matches!(
                    serde_json::from_slice::<Value>(body),
                    Ok(Value::Object(fields)) if fields.contains_key("name")
                );
                match update_source_body("demo".to_owned(), body) {
                    Ok(request) => {
                        assert!(!renames, "an update renamed a Source");
                        assert_eq!(request.id_or_name, "demo");
                    }
                    Err(refusal) => check_refusal(&refusal, body),
                }
                if let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body)
                    && !fields.keys().any(|key| key.contains("canary"))
                {
                    fields.insert("upload_secret_access_key".to_owned(), CANARY.into());
                    let with_secret = Value::Object(fields).to_string();
                    match update_source_body("demo".to_owned(), with_secret.as_bytes()) {
                        Ok(request) => {
                            let source = request.source.unwrap_or_default();
                            assert_eq!(source.upload_access_key.unwrap_or_default().secret, CANARY);
                        }
                        Err(refusal) => {
                            check_refusal(&refusal, with_secret.as_bytes());
                            assert!(!format!("{refusal:?}").contains(CANARY), "{refusal:?}");
                        }
                    }
                }
            }
            2 => {
                if let Err(refusal) = rotate_token_body(body) {
                    check_refusal(&refusal, body);
                }
            }
            _ => match purge_body(body) {
                Ok(target) => {
                    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
                        panic!("a purge from a body that is not an object");
                    };
                    assert_eq!(fields.len(), 1, "a purge names one target");
                    match target {
                        PurgeTarget::All => assert_eq!(fields.get("all"), Some(&Value::Bool(true))),
                        PurgeTarget::Prefix(prefix) => {
                            assert!(fields.contains_key("prefix"));
                            assert!(!prefix.is_empty() && !prefix.starts_with('/'), "{prefix:?}");
                        }
                        PurgeTarget::Path(path) => {
                            assert!(fields.contains_key("path"));
                            // Decoded already, so checked as it is, not decoded again.
                            let acceptable = !path.is_empty()
                                && !path.starts_with(['/', '\\'])
                                && !path.chars().any(char::is_control)
                                && path.split(['/', '\\']).all(|s| s != "..");
                            assert!(
                                acceptable,
                                "a purge of {path:?}, which no image request names"
                            );
                            let encoded = path.replace('%', "%25");
                            assert_eq!(
                                asset_path(&format!("/{encoded}")).as_deref(),
                                Some(path.as_str())
                            );
                        }
                    }
                }
                Err(refusal) => check_refusal(&refusal, body),
            },
        }
    });
}
