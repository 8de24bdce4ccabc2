//! Logs and traces of real service processes — mostly the gateway on its
//! own (its peers need not run for it to answer, log and trace), and the
//! whole mesh for `traceresponse`: JSON log lines, the standard
//! `OTEL_TRACES_SAMPLER` settings, OTLP export over HTTP as well as gRPC.

use std::time::Duration;

use imgmesh_integration_tests::fixtures;
use imgmesh_integration_tests::{
    ChildProcess, Mesh, MeshCerts, MeshOptions, OtlpReceiver, S3_SECRET_KEY, binary_path, get,
    unused_port,
};

/// A W3C traceparent of a sampled trace, with the trace id `trace`.
fn traceparent(trace: &str, sampled: bool) -> String {
    format!(
        "00-{trace}-00f067aa0ba902b7-{}",
        if sampled { "01" } else { "00" }
    )
}

/// A gateway alone whose registry and renderer are closed ports, with
/// `env` as its whole environment (besides `PATH`) and a development
/// certificate written under `logs`; logs go to `logs`.
async fn lone_gateway(
    env: &[(&str, String)],
    logs: &std::path::Path,
) -> (ChildProcess, std::net::SocketAddr) {
    let mut command = std::process::Command::new(binary_path("imgmesh-gateway").unwrap());
    command.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let certs = MeshCerts::write(&logs.join(format!("certs-{}", unused_port()))).unwrap();
    command
        .args(certs.tls_args("gateway"))
        .arg("--listen=127.0.0.1:0")
        .arg("--ops-listen=127.0.0.1:0")
        .arg(format!("--registry-url=http://127.0.0.1:{}", unused_port()))
        .arg(format!("--renderer-url=http://127.0.0.1:{}", unused_port()))
        .arg("--base-domain=localhost");
    let name = format!("gateway-{}", unused_port());
    let mut gateway = ChildProcess::spawn(&name, &mut command, logs).unwrap();
    let addr = gateway.listening("http").await.unwrap();
    (gateway, addr)
}

/// Sends one request with `traceparent` and returns its `traceresponse`.
async fn traced_request(addr: std::net::SocketAddr, traceparent: &str) -> String {
    let response = get(
        addr,
        "demo.localhost",
        "/cat.jpg?w=10",
        &[("traceparent", traceparent)],
    )
    .await
    .unwrap();
    assert!(response.status >= 400, "no peers, yet {}", response.status);
    response
        .header("traceresponse")
        .expect("a traceresponse header")
        .to_owned()
}

/// The trace ids the receiver holds spans of from `imgmesh-gateway`.
fn traced(receiver: &OtlpReceiver) -> std::collections::BTreeSet<String> {
    receiver
        .spans()
        .into_iter()
        .filter(|span| span.service == "imgmesh-gateway")
        .map(|span| span.trace_id)
        .collect()
}

/// The exporter's common settings: `endpoint`, a short batch delay.
fn export_env(endpoint: String) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]
}

/// With `OTEL_TRACES_SAMPLER=always_off` nothing is exported, even under a
/// sampled `traceparent`, and the response says unsampled; with
/// `parentbased_always_on` a sampled caller's trace is exported and an
/// unsampled caller's is not. Each gateway is stopped (flushing its
/// exporter) before the receiver is read, so an absence is final.
#[tokio::test]
async fn sampler_settings_decide_what_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let off_trace = "11111111111111111111111111111111";
    let on_trace = "22222222222222222222222222222222";
    let unsampled_trace = "33333333333333333333333333333333";

    let mut env = export_env(receiver.endpoint());
    env.push(("OTEL_TRACES_SAMPLER", "always_off".to_owned()));
    let (mut off, addr) = lone_gateway(&env, dir.path()).await;
    let answer = traced_request(addr, &traceparent(off_trace, true)).await;
    assert!(
        answer.starts_with(&format!("00-{off_trace}-")) && answer.ends_with("-00"),
        "{answer}"
    );
    assert!(
        off.terminate(Duration::from_secs(10)).await,
        "{}",
        off.log()
    );

    let mut env = export_env(receiver.endpoint());
    env.push(("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned()));
    let (mut on, addr) = lone_gateway(&env, dir.path()).await;
    let answer = traced_request(addr, &traceparent(on_trace, true)).await;
    assert!(answer.ends_with("-01"), "{answer}");
    let answer = traced_request(addr, &traceparent(unsampled_trace, false)).await;
    assert!(answer.ends_with("-00"), "{answer}");
    assert!(on.terminate(Duration::from_secs(10)).await, "{}", on.log());

    let traces = traced(&receiver);
    assert!(traces.contains(on_trace), "{traces:?}\n{}", on.log());
    assert!(
        !traces.contains(off_trace),
        "always_off exported: {traces:?}"
    );
    assert!(
        !traces.contains(unsampled_trace),
        "an unsampled parent's trace was exported: {traces:?}"
    );
}

/// With `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` spans reach an
/// OTLP/HTTP receiver at the endpoint's `/v1/traces`, under the caller's
/// trace id.
#[tokio::test]
async fn spans_are_exported_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = OtlpReceiver::start_http().await.unwrap();
    let trace = "44444444444444444444444444444444";
    let mut env = export_env(receiver.endpoint());
    env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()));
    let (gateway, addr) = lone_gateway(&env, dir.path()).await;
    traced_request(addr, &traceparent(trace, true)).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !traced(&receiver).contains(trace) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span of {trace} over OTLP/HTTP: {:?}\n{}",
            receiver.spans(),
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With `--log-format json` every line the service logs is one JSON object
/// with a timestamp, a level and a message (the stdout announcements of its
/// listeners aside), and what it logs while serving a request (here, the
/// failure to reach its registry) names the request's trace.
#[tokio::test]
async fn json_log_lines_parse() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("IMGMESH_LOG_FORMAT", "json".to_owned()),
        ("IMGMESH_LOG", "info".to_owned()),
    ];
    let (mut gateway, addr) = lone_gateway(&env, dir.path()).await;
    let trace = "55555555555555555555555555555555";
    traced_request(addr, &traceparent(trace, true)).await;
    assert!(gateway.terminate(Duration::from_secs(10)).await);

    let log = gateway.log();
    let mut parsed = 0;
    let mut in_the_request = 0;
    // The harness keeps stdout and stderr in one log, read from two pipes:
    // an announcement can land between a JSON line and its newline, leaving
    // a blank line, which is not a log line.
    for line in log
        .lines()
        .filter(|line| !line.contains(" listening on ") && !line.trim().is_empty())
    {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{log}"));
        for field in ["timestamp", "level", "message", "target"] {
            assert!(entry[field].is_string(), "no {field}: {line}");
        }
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&entry["level"].as_str().unwrap()),
            "{line}"
        );
        parsed += 1;
        if entry["spans"][0]["trace_id"] == trace {
            in_the_request += 1;
        }
    }
    assert!(parsed >= 1, "nothing logged:\n{log}");
    assert!(in_the_request >= 1, "no line names trace {trace}:\n{log}");
}

/// Through the whole mesh, a 200 and a 404 each carry a `traceresponse`
/// with the client's trace id and the id of the gateway's `http.server`
/// span, which the trace store receives under that trace, sampled.
#[tokio::test]
async fn traceresponse_names_the_exported_gateway_span() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let mesh = Mesh::start(MeshOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts");
    mesh.put_object("photos/cat.jpg", &fixtures::jpeg(600, 400).unwrap())
        .unwrap();
    mesh.create_source("demo", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");

    for (path, status, trace) in [
        (
            "/photos/cat.jpg?w=100",
            200,
            "66666666666666666666666666666666",
        ),
        (
            "/photos/none.jpg?w=100",
            404,
            "77777777777777777777777777777777",
        ),
    ] {
        let sent = traceparent(trace, true);
        let response = mesh
            .get_with("demo", path, &[("traceparent", sent.as_str())])
            .await
            .unwrap();
        assert_eq!(response.status, status, "{path}: {}", response.text());
        let answer = response
            .header("traceresponse")
            .unwrap_or_else(|| panic!("{path}: no traceresponse"));
        let fields: Vec<&str> = answer.split('-').collect();
        assert_eq!(fields.len(), 4, "{answer}");
        assert_eq!(
            (fields[0], fields[1], fields[3]),
            ("00", trace, "01"),
            "{answer}"
        );
        let span_id = fields[2];

        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let spans = receiver.spans();
            let found = spans.iter().find(|span| span.span_id == span_id);
            if let Some(span) = found {
                assert_eq!(span.trace_id, trace, "{span:?}");
                assert_eq!(span.service, "imgmesh-gateway", "{span:?}");
                assert_eq!(span.name, "GET image", "{span:?}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: span {span_id} of {answer} never exported: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
