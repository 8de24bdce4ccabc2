//! Upload credentials and UploadObject: kept apart from the read
//! credentials, refused with a clear message, written under the prefix.

use super::*;

/// Upload credentials are stored apart: only their hint is shown, read
/// access never carries them, and an update can remove them.
async fn upload_credentials_stay_apart(db: TestDb) {
    let registry = db.open().await;
    let created = registry
        .create_source(&{
            let mut request = create_request("demo");
            request.upload_access_key.get_or_insert_default().id = "AKIAUPLOADEXAMPLE".into();
            request.upload_access_key.get_or_insert_default().secret = UPLOAD_SECRET.into();
            request
        })
        .await
        .unwrap();
    assert_eq!(created.upload_access_key().id_hint, "…MPLE");
    assert!(!format!("{created:?}").contains(UPLOAD_SECRET));
    let access = registry.read_access(&created.id).await.unwrap();
    assert_eq!(access.bucket.key.id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(access.bucket.key.secret.expose_secret(), SECRET);
    assert!(!format!("{access:?}").contains(UPLOAD_SECRET));
    let record = registry.find("demo").await.unwrap();
    let upload = registry.upload_credentials(&record).await.unwrap().unwrap();
    assert_eq!(upload.id, "AKIAUPLOADEXAMPLE");
    assert_eq!(upload.secret.expose_secret(), UPLOAD_SECRET);

    let removed = registry
        .update_source(&test_update(
            "demo",
            &[("upload_access_key.id", Text(String::new()))],
        ))
        .await
        .unwrap();
    assert_eq!(removed.upload_access_key().id_hint, "");
    let record = registry.find("demo").await.unwrap();
    assert!(
        registry
            .upload_credentials(&record)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        registry
            .store
            .secret(&created.id, UPLOAD_SECRET_ACCESS_KEY_FIELD)
            .await
            .unwrap(),
        None
    );
}

/// The upload stream `header` then `chunks`, as the gRPC service gets it.
fn upload_stream(
    header: Option<proto::UploadObjectHeader>,
    chunks: &[&[u8]],
) -> futures::stream::Iter<std::vec::IntoIter<Result<proto::UploadObjectRequest, tonic::Status>>> {
    use proto::upload_object_request::Part;
    let messages: Vec<Result<proto::UploadObjectRequest, tonic::Status>> = header
        .map(Part::Header)
        .into_iter()
        .chain(
            chunks
                .iter()
                .map(|chunk| Part::Chunk(chunk.to_vec().into())),
        )
        .map(|part| Ok(proto::UploadObjectRequest { part: Some(part) }))
        .collect();
    futures::stream::iter(messages)
}

/// An upload header for `key` on Source `id_or_name`, no type or size given.
fn header(id_or_name: &str, key: &str) -> proto::UploadObjectHeader {
    proto::UploadObjectHeader {
        id_or_name: id_or_name.into(),
        key: key.into(),
        ..Default::default()
    }
}

/// Uploads are refused, with a clear message, for a Source that is not
/// deployed or has no upload credentials, and for bad keys, sizes and
/// streams.
async fn upload_refusals(db: TestDb) {
    let registry = db.open().await.with_max_upload_bytes(10);
    registry
        .create_source(&{
            let mut request = create_request("up");
            request.upload_access_key.get_or_insert_default().id = "AKIAUPLOADEXAMPLE".into();
            request.upload_access_key.get_or_insert_default().secret = UPLOAD_SECRET.into();
            request
        })
        .await
        .unwrap();
    registry
        .create_source(&create_request("plain"))
        .await
        .unwrap();
    let upload = |header: Option<proto::UploadObjectHeader>, chunks: &[&[u8]]| {
        let registry = registry.clone();
        let stream = upload_stream(header, chunks);
        async move { crate::object_upload::upload_object(&registry, stream).await }
    };

    let error = upload(Some(header("up", "a.jpg")), &[b"x"])
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "the source is not deployed");
    mark_deployed(&registry, "up").await;
    mark_deployed(&registry, "plain").await;
    let error = upload(Some(header("plain", "a.jpg")), &[b"x"])
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "the source has no upload credentials");
    assert!(is_not_found(
        &upload(Some(header("nobody", "a.jpg")), &[b"x"])
            .await
            .unwrap_err()
    ));

    let field_of = |error: RegistryError| match error {
        RegistryError::InvalidField { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let error = upload(None, &[b"x"]).await.unwrap_err();
    assert_eq!(field_of(error), "header");
    for key in [
        "",
        "../x.jpg",
        "//host/x.jpg",
        "a/../../b.jpg",
        "a\\..\\b.jpg",
    ] {
        let error = upload(Some(header("up", key)), &[b"x"]).await.unwrap_err();
        assert_eq!(field_of(error), "key", "{key:?}");
    }
    let typed = proto::UploadObjectHeader {
        content_type: "not a type".into(),
        ..header("up", "a.jpg")
    };
    assert_eq!(
        field_of(upload(Some(typed), &[b"x"]).await.unwrap_err()),
        "content_type"
    );
    let sized = proto::UploadObjectHeader {
        size: 11,
        ..header("up", "a.jpg")
    };
    assert!(matches!(
        upload(Some(sized), &[b"x"]).await.unwrap_err(),
        RegistryError::UploadTooLarge { cap: 10 }
    ));
    assert!(matches!(
        upload(Some(header("up", "a.jpg")), &[b"123456", b"78901"])
            .await
            .unwrap_err(),
        RegistryError::UploadTooLarge { cap: 10 }
    ));
    let mismatched = proto::UploadObjectHeader {
        size: 5,
        ..header("up", "a.jpg")
    };
    assert_eq!(
        field_of(upload(Some(mismatched), &[b"123"]).await.unwrap_err()),
        "size"
    );
    assert_eq!(
        field_of(upload(Some(header("up", "a.jpg")), &[]).await.unwrap_err()),
        "chunk"
    );
    let twice = upload_stream(Some(header("up", "a.jpg")), &[b"1"])
        .chain(upload_stream(Some(header("up", "b.jpg")), &[]));
    let error = crate::object_upload::upload_object(&registry, Box::pin(twice))
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "header");
}

/// An upload lands under the Source's prefix with the upload
/// credentials; a rejected upload secret is named.
async fn upload_writes_under_the_prefix(db: TestDb) {
    let registry = db.open().await;
    let s3 = S3Server::start(&["images"]).await;
    registry
        .create_source(&{
            let mut request = s3_request("demo", &s3, S3_SECRET_KEY);
            request.upload_access_key.get_or_insert_default().id = S3_ACCESS_KEY.into();
            request.upload_access_key.get_or_insert_default().secret = S3_SECRET_KEY.into();
            request
        })
        .await
        .unwrap();
    registry.deploy_source("demo").await.unwrap();
    assert_eq!(
        deployed(&registry, "demo").await.deploy_state().status(),
        proto::SourceStatus::Deployed
    );
    let png = b"\x89PNG\r\n\x1a\nnot really a png";
    let stored = crate::object_upload::upload_object(
        &registry,
        upload_stream(Some(header("demo", "new/dog.png")), &[&png[..8], &png[8..]]),
    )
    .await
    .unwrap();
    assert_eq!(stored.key, "photos/new/dog.png");
    assert_eq!(stored.size, png.len() as u64);
    assert!(!stored.etag.is_empty());
    assert_eq!(
        s3.read_object("images", "photos/new/dog.png").as_deref(),
        Some(&png[..])
    );

    registry
        .update_source(&test_update(
            "demo",
            &[
                ("upload_access_key.id", Text(S3_ACCESS_KEY.into())),
                (
                    "upload_access_key.secret",
                    Text("wrong-upload-secret".into()),
                ),
            ],
        ))
        .await
        .unwrap();
    let error = crate::object_upload::upload_object(
        &registry,
        upload_stream(Some(header("demo", "other.png")), &[png]),
    )
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "the upload credentials were rejected");
    assert!(!error.to_string().contains("wrong-upload-secret"));
    assert!(s3.read_object("images", "photos/other.png").is_none());
}

/// Upload credentials without s3:PutObject are named as such.
async fn upload_without_put_permission_is_named(db: TestDb) {
    let registry = db.open().await;
    let front = PolicyFront::start(Policy {
        denied: Some(S3Operation::PutObject),
        location: "",
        listed_key: Some("photos/cat.jpg"),
    })
    .await;
    registry
        .create_source(&{
            let mut request = create_request("demo");
            request.location.get_or_insert_default().endpoint = front.endpoint.clone();
            request.upload_access_key.get_or_insert_default().id = "AKIAUPLOADEXAMPLE".into();
            request.upload_access_key.get_or_insert_default().secret = UPLOAD_SECRET.into();
            request
        })
        .await
        .unwrap();
    registry.deploy_source("demo").await.unwrap();
    assert_eq!(
        deployed(&registry, "demo").await.deploy_state().status(),
        proto::SourceStatus::Deployed
    );
    let error = crate::object_upload::upload_object(
        &registry,
        upload_stream(Some(header("demo", "x.jpg")), &[b"jpeg"]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the upload credentials lack s3:PutObject"
    );
    let status = tonic::Status::from(error);
    assert_eq!(
        imgmesh_errors::ErrorCode::of_status(&status),
        imgmesh_errors::ErrorCode::OriginAccessDenied
    );
}

on_both_backends!(
    upload_credentials_stay_apart,
    upload_refusals,
    upload_writes_under_the_prefix,
    upload_without_put_permission_is_named,
);
