//! ListObjects: the objects under a Source's prefix, listed with its read
//! credentials, a page at a time, keys relative to the prefix.

use super::*;

/// The request for one page of Source `id_or_name`'s objects.
fn list_request(
    id_or_name: &str,
    prefix: &str,
    page_size: u32,
    token: &str,
) -> proto::ListObjectsRequest {
    proto::ListObjectsRequest {
        id_or_name: id_or_name.into(),
        prefix: prefix.into(),
        page_size,
        page_token: token.into(),
    }
}

/// Only the objects under the Source's prefix are listed, relative to it
/// and in key order (a key beside the prefix that merely starts like it,
/// `photosX/`, is not); a page size
/// pages through them with the continuation token until the last page,
/// which has none; a request prefix narrows the listing.
async fn lists_under_the_prefix_in_pages(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3Server::start(&["images"]).await;
    for key in [
        "photos/a.jpg",
        "photos/b/c.png",
        "photos/d.gif",
        "photosX/outside.jpg",
        "other/e.jpg",
    ] {
        s3.put_object("images", key, b"bytes");
    }
    registry
        .create_source(&s3_request("demo", &s3, S3_SECRET_KEY))
        .await
        .unwrap();

    let all = crate::object_listing::list_objects(&registry, &list_request("demo", "", 0, ""))
        .await
        .unwrap();
    let keys: Vec<&str> = all
        .objects
        .iter()
        .map(|object| object.key.as_str())
        .collect();
    assert_eq!(keys, ["a.jpg", "b/c.png", "d.gif"]);
    assert_eq!(all.objects[0].size, 5);
    assert!(all.objects[0].last_modified > 0);
    assert_eq!(all.next_page_token, "");

    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page =
            crate::object_listing::list_objects(&registry, &list_request("demo", "", 2, &token))
                .await
                .unwrap();
        pages.push(
            page.objects
                .iter()
                .map(|object| object.key.clone())
                .collect::<Vec<_>>(),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages.concat(), ["a.jpg", "b/c.png", "d.gif"]);
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(pages[0].len(), 2, "{pages:?}");

    let narrowed =
        crate::object_listing::list_objects(&registry, &list_request("demo", "b/", 0, ""))
            .await
            .unwrap();
    assert_eq!(narrowed.objects.len(), 1);
    assert_eq!(narrowed.objects[0].key, "b/c.png");
}

/// Read credentials without s3:ListBucket: the refusal names it; an
/// unknown Source is not found.
async fn listing_refusals_name_the_permission(db: TestDb) {
    let registry = db.open().await;
    let front = PolicyFront::start(Policy {
        denied: Some(S3Operation::ListObjectsV2),
        location: "",
        listed_key: None,
    })
    .await;
    registry
        .create_source(&{
            let mut request = create_request("demo");
            request.location.get_or_insert_default().endpoint = front.endpoint.clone();
            request
        })
        .await
        .unwrap();
    let error = crate::object_listing::list_objects(&registry, &list_request("demo", "", 0, ""))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "the read credentials lack s3:ListBucket");
    let missing = crate::object_listing::list_objects(&registry, &list_request("nope", "", 0, ""))
        .await
        .unwrap_err();
    assert!(matches!(missing, RegistryError::NotFound(_)), "{missing:?}");
}

on_both_backends!(
    lists_under_the_prefix_in_pages,
    listing_refusals_name_the_permission,
);
