//! A srcset through the whole mesh: the renderer keeps the decode of an
//! original it decodes twice and resizes the other widths from it, it
//! batches the widths of one original that are asked for together.

use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{Mesh, MeshOptions, S3_SECRET_KEY};

/// The widths of one original asked for one after another through the
/// gateway: the first two decode it (the second keeps its decode), the
/// rest at the same JPEG scale or coarser are resized from that decode —
/// the renderer's `/metrics` counts them as intermediate hits and the
/// decodes stay at two. Another original is decoded on its own, and with
/// reuse off every width decodes. Batching is off: these are renders
/// outside batches, one at a time.
#[tokio::test]
async fn srcset_widths_reuse_one_decode() {
    for (reuse, bytes) in [(true, 67_108_864), (false, 0)] {
        let mesh = mesh_with_wide_jpeg(vec![
            "--render-batch-max=1".to_owned(),
            format!("--render-intermediate-bytes={bytes}"),
        ])
        .await;
        mesh.put_object(
            "photos/other.jpg",
            &fixtures::noise_jpeg(1600, 1000).unwrap(),
        )
        .unwrap();
        // 1600 ÷ w from 8 to 16: every width decodes at 1/4 scale.
        let widths = [200, 176, 160, 144, 120, 112];
        for width in widths {
            let response = mesh
                .get("demo", &format!("/photos/wide.jpg?w={width}&fm=jpg"))
                .await
                .unwrap();
            assert_eq!(response.status, 200, "w={width}: {}", response.text());
            fixtures::expect_image(&response.body, Format::Jpeg, width, width * 5 / 8).unwrap();
        }
        let other = mesh.get("demo", "/photos/other.jpg?w=200").await.unwrap();
        assert_eq!(other.status, 200, "{}", other.text());

        let hits = renderer_metric(&mesh, "imgmesh_render_intermediate_hits_total").await;
        let decodes = renderer_metric(&mesh, "imgmesh_originals_decoded_total").await;
        let stored = renderer_metric(&mesh, "imgmesh_render_intermediate_stored_total").await;
        if reuse {
            assert_eq!(
                (hits, stored, decodes),
                (4.0, 1.0, 3.0),
                "(hits, kept, decodes) with reuse"
            );
            assert!(
                renderer_metric(&mesh, "imgmesh_render_intermediate_bytes").await
                    == 400.0 * 250.0 * 3.0,
                "one 1/4-scale decode kept"
            );
        } else {
            assert_eq!(
                (hits, stored, decodes),
                (0.0, 0.0, 7.0),
                "(hits, kept, decodes) without reuse"
            );
        }
    }
}

/// Ten widths of one original asked for at once, from cold, through the
/// gateway (a browser reading a srcset): with batching the renderer runs
/// the renders that wait for its one worker together, so its `/metrics`
/// count fewer decodes than widths (and the widths made from a shared
/// decode); with batching off (the default) every width decodes. Every
/// width comes back at its size either way.
#[tokio::test]
async fn srcset_widths_asked_together_batch() {
    let widths = [80, 160, 240, 320, 400, 480, 560, 640, 800, 960];
    for batch_max in [16, 1] {
        let mesh = mesh_with_wide_jpeg(vec![
            format!("--render-batch-max={batch_max}"),
            "--workers=1".to_owned(),
            "--render-queue-depth=12".to_owned(),
        ])
        .await;
        let paths: Vec<_> = widths
            .iter()
            .map(|width| format!("/photos/wide.jpg?w={width}&fm=jpg"))
            .collect();
        let responses =
            futures::future::join_all(paths.iter().map(|path| mesh.get("demo", path))).await;
        for (response, width) in responses.into_iter().zip(widths) {
            let response = response.unwrap();
            assert_eq!(response.status, 200, "w={width}: {}", response.text());
            fixtures::expect_image(&response.body, Format::Jpeg, width, width * 5 / 8).unwrap();
        }
        let decodes = renderer_metric(&mesh, "imgmesh_originals_decoded_total").await;
        let batched = renderer_metric(&mesh, "imgmesh_render_batched_total").await;
        let batches = renderer_metric(&mesh, "imgmesh_render_batches_total").await;
        if batch_max > 1 {
            // The first render may run alone if its worker is free before
            // the others arrive; the others wait for it together.
            assert!(
                decodes <= 3.0 && batches >= 1.0 && decodes + batched == 10.0,
                "(decodes, batches, batched) with batching: {:?}",
                (decodes, batches, batched)
            );
        } else {
            assert_eq!(
                (decodes, batches, batched),
                (10.0, 0.0, 0.0),
                "(decodes, batches, batched) without batching"
            );
        }
    }
}

/// A mesh whose renderer runs with `renderer_args`, with Source `demo`
/// and a 1600 × 1000 JPEG at `photos/wide.jpg`.
async fn mesh_with_wide_jpeg(renderer_args: Vec<String>) -> Mesh {
    let mesh = Mesh::start(MeshOptions {
        renderer_args,
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts");
    mesh.put_object("photos/wide.jpg", &fixtures::jpeg(1600, 1000).unwrap())
        .unwrap();
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    mesh
}

/// The renderer's metric `name` (summed over its labels), from its
/// `/metrics`.
async fn renderer_metric(mesh: &Mesh, name: &str) -> f64 {
    mesh.metric("renderer", name, "")
        .await
        .expect("renderer /metrics")
}
