//! deploy/grafana/imgmesh.json against a real mesh: every PromQL
//! expression in the dashboard (panels and template variables) selects
//! metrics the services expose and matches, groups and aggregates on labels
//! those metrics carry (see `promql_check`).

use std::path::PathBuf;

use imgmesh_integration_tests::fixtures;
use imgmesh_integration_tests::{Mesh, MeshOptions, S3_SECRET_KEY, get};
use serde_json::Value;

use crate::promql_check::{Exposition, check};

/// The dashboard, relative to the repository's root.
const DASHBOARD: &str = "deploy/grafana/imgmesh.json";

/// The dashboard as JSON.
fn dashboard() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the repository")
        .join(DASHBOARD);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every panel, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// Every PromQL expression of the dashboard, with where it is: panel
/// targets and the `label_values(metric, label)` of query variables, as the
/// equivalent selector `metric` and a `by (label)` over it.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target with an expr");
            found.push((format!("panel {:?}", panel["title"]), expr.to_owned()));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .expect("a query variable's query");
        let arguments = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable query {query:?} is not label_values(…)"));
        let (selector, label) = arguments
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("{query:?} names no label"));
        found.push((
            format!("variable {:?}", variable["name"]),
            format!("count by ({}) ({})", label.trim(), selector.trim()),
        ));
    }
    found
}

/// The dashboard is one Grafana can import for any Prometheus: a recent
/// schema, a `datasource` variable of type prometheus that every panel and
/// target uses, unique panel ids, and rows for the four tiers.
#[test]
fn dashboard_is_importable() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let datasource = variables
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");

    let mut ids = std::collections::BTreeSet::new();
    let mut rows = Vec::new();
    for panel in panels(&dashboard) {
        let id = panel["id"].as_u64().expect("a panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        if panel["type"] == "row" {
            rows.push(panel["title"].as_str().unwrap().to_lowercase());
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "{}",
                panel["title"]
            );
        }
    }
    for tier in ["gateway", "renderer", "fetcher", "registry"] {
        assert!(
            rows.iter().any(|row| row.contains(tier)),
            "no {tier} row in {rows:?}"
        );
    }
}

/// After a miss, a hit and a 404 through the gateway, every expression of
/// the dashboard selects metrics and labels (and `label="value"` matches)
/// that the four services' `/metrics` expose.
#[tokio::test]
async fn dashboard_queries_match_the_mesh_metrics() {
    let mesh = Mesh::start(MeshOptions::default())
        .await
        .expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(600, 400).unwrap())
        .unwrap();
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    let miss = mesh
        .get("demo", "/photos/cat.jpg?w=300&fm=webp")
        .await
        .unwrap();
    assert_eq!(miss.status, 200, "{}", miss.text());
    assert_eq!(miss.header("x-imgmesh-cache"), Some("miss"));
    let hit = mesh
        .get("demo", "/photos/cat.jpg?w=300&fm=webp")
        .await
        .unwrap();
    assert_eq!(hit.status, 200, "{}", hit.text());
    assert_eq!(hit.header("x-imgmesh-cache"), Some("hit"));
    let missing = mesh.get("demo", "/photos/none.jpg?w=300").await.unwrap();
    assert_eq!(missing.status, 404, "{}", missing.text());

    let mut exposition = Exposition::default();
    for service in ["source-registry", "fetcher", "renderer", "gateway"] {
        let metrics = get(mesh.metrics_addr(service), "localhost", "/metrics", &[])
            .await
            .unwrap_or_else(|e| panic!("{service} /metrics: {e:#}"));
        assert_eq!(metrics.status, 200, "{service}");
        let text = metrics.text();
        // The target labels the dashboard uses come from Prometheus; a
        // service exposing one would have it renamed `exported_…` and the
        // dashboard would read the wrong one. (`service`, which the
        // Prometheus Operator also sets, is on the older
        // imgmesh_grpc_requests_total; the dashboard reads grpc_* instead.)
        for label in ["job", "instance", "namespace"] {
            assert!(
                !text.contains(&format!("{{{label}=\"")),
                "{service} exposes {label}"
            );
            assert!(
                !text.contains(&format!(",{label}=\"")),
                "{service} exposes {label}"
            );
        }
        exposition
            .add(&text)
            .unwrap_or_else(|e| panic!("{service} /metrics: {e:#}"));
    }

    let expressions = expressions(&dashboard());
    assert!(expressions.len() >= 20, "{} expressions", expressions.len());
    let problems: Vec<String> = expressions
        .iter()
        .flat_map(|(place, expr)| {
            check(expr, &exposition)
                .into_iter()
                .map(move |problem| format!("{place}: {problem}"))
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
