//! The operator's kit checked with real tools and against the real
//! binaries:
//!
//! - every overlay of deploy/kubernetes/ renders with `kubectl kustomize`
//!   and passes `kubernetes-validate --strict`; its ServiceMonitors pass the
//!   Prometheus Operator CRD's schema and its cert-manager Certificates a
//!   schema of cert-manager's documented fields (deploy/schemas/), each
//!   tier's certificate naming its identity and Service and mounted by its
//!   pods, and docker-compose.yml
//!   the compose-spec schema, both through `check-jsonschema`; yamllint passes
//!   on the sources and on the rendered overlays. Each validator is also shown
//!   a copy with one unknown field and must refuse it;
//! - every `--flag` and environment variable the manifests and compose give a
//!   container is one its binary lists in `--help`;
//! - every port a probe, Service, ServiceMonitor, NetworkPolicy or peer URL
//!   names is one the service listens on, as its flags and the binary's
//!   defaults say;
//! - compose's healthchecks and the images' (each binary's `health`
//!   subcommand) pass against a running mesh and fail for a killed service
//!   and for the services that need it (the gateway without a renderer,
//!   the fetcher without a registry);
//!   hadolint passes on the Dockerfiles, which build each binary with a
//!   cached dependency layer and run it as the manifests' non-root user;
//! - docs/configuration.md is what the binaries' `--help` says
//!   (`IMGMESH_WRITE_DOCS=1 cargo nextest run -p imgmesh-integration-tests
//!   --test integration deploy_kit::configuration_page` rewrites it).
//!
//! The tools come from scripts/install-deps.sh (tools/python/deploy-kit);
//! what the binaries accept is read from their `--help`, never from here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, bail, ensure};
use imgmesh_integration_tests::{Mesh, MeshOptions, binary_path};
use serde_json::{Value, json};

/// The Kubernetes version the rendered manifests are validated against:
/// the oldest of the versions kubernetes-validate 1.37 ships schemas for
/// that has every field the kit uses (preStop `sleep`, `matchLabelKeys`).
const KUBERNETES_VERSION: &str = "1.34.0";

/// The overlays under deploy/kubernetes/overlays/.
const OVERLAYS: [&str; 2] = ["small", "production"];

/// The four tiers: component label, binary, and the role its metrics
/// listener has (the gateway serves `/metrics` on its ops listener).
const TIERS: [(&str, &str, &str); 4] = [
    (
        "source-registry",
        "imgmesh-source-registry",
        "metrics-listen",
    ),
    ("fetcher", "imgmesh-fetcher", "metrics-listen"),
    ("renderer", "imgmesh-renderer", "metrics-listen"),
    ("gateway", "imgmesh-gateway", "ops-listen"),
];

/// Environment variables a container may carry that no imgmesh flag reads,
/// with who reads them.
const LIBRARY_ENV: [(&str, &str, &str); 1] = [(
    "imgmesh-source-registry",
    "PGPASSWORD",
    "sqlx reads it when --database-url has no password",
)];

/// The page this file keeps up to date.
const CONFIGURATION_PAGE: &str = "docs/configuration.md";

// === tools ===

/// The repository's root (this crate lives one level below it).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the repository")
        .to_path_buf()
}

/// Where scripts/install-deps.sh puts the validators.
fn kit_dir() -> PathBuf {
    repo_root().join("tools/python/deploy-kit")
}

/// A command running one of the installed validators.
fn kit_tool(name: &str) -> anyhow::Result<Command> {
    let path = kit_dir().join("bin").join(name);
    ensure!(
        path.is_file(),
        "{} is missing: run scripts/install-deps.sh (or `make test`)",
        path.display()
    );
    let mut command = Command::new(path);
    command
        .env("PYTHONPATH", kit_dir())
        .current_dir(repo_root());
    Ok(command)
}

/// Runs `command`; its output, whether it succeeded or not.
fn run(command: &mut Command) -> anyhow::Result<Output> {
    command
        .output()
        .with_context(|| format!("running {command:?}"))
}

/// Runs `command` and fails unless it succeeds; its stdout.
fn run_ok(command: &mut Command) -> anyhow::Result<String> {
    let output = run(command)?;
    ensure!(
        output.status.success(),
        "{command:?} failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Every document of a YAML file as JSON, parsed by PyYAML (merge keys
/// resolved).
fn yaml_documents(path: &Path) -> anyhow::Result<Vec<Value>> {
    let mut python = Command::new("python3");
    python
        .env("PYTHONPATH", kit_dir())
        .arg("-c")
        .arg(
            "import json, sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]\n\
             json.dump(docs, sys.stdout)",
        )
        .arg(path);
    Ok(serde_json::from_str(&run_ok(&mut python)?)?)
}

/// `kubectl kustomize` of one overlay.
fn render_overlay(overlay: &str) -> anyhow::Result<String> {
    run_ok(
        kit_tool("kubectl")?
            .arg("kustomize")
            .arg(format!("deploy/kubernetes/overlays/{overlay}")),
    )
}

/// One overlay rendered into `dir`: the file and its documents.
fn rendered(dir: &Path, overlay: &str) -> anyhow::Result<(PathBuf, Vec<Value>)> {
    let path = dir.join(format!("{overlay}.yaml"));
    std::fs::write(&path, render_overlay(overlay)?)?;
    let documents = yaml_documents(&path)?;
    ensure!(!documents.is_empty(), "{overlay} rendered nothing");
    Ok((path, documents))
}

/// Writes JSON documents as one multi-document YAML file (JSON is YAML).
fn write_documents(path: &Path, documents: &[Value]) -> anyhow::Result<()> {
    let text: Vec<String> = documents.iter().map(Value::to_string).collect();
    std::fs::write(path, text.join("\n---\n"))?;
    Ok(())
}

// === clap help ===

/// One option of a binary, as its `--help` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HelpOption {
    /// `--name`.
    long: String,
    /// `-n`, when there is one.
    short: Option<String>,
    /// `<VALUE>`, empty for a switch.
    value: String,
    /// The environment variable.
    env: Option<String>,
    /// The default, as shown.
    default: Option<String>,
    /// The help text without the bracketed notes.
    help: String,
}

/// A binary's (or subcommand's) `--help`: its description, options and
/// subcommands.
#[derive(Debug, Clone, Default)]
struct Help {
    about: String,
    options: Vec<HelpOption>,
    subcommands: Vec<String>,
}

/// `<binary> <words…> --help`, with an empty environment so that no
/// variable of ours shows up as a value.
fn help_text(binary: &str, words: &[&str]) -> anyhow::Result<String> {
    run_ok(
        Command::new(binary_path(binary)?)
            .env_clear()
            .args(words)
            .arg("--help"),
    )
}

/// Parses clap's help, in both its compact layout (`--flag <V>  text
/// [env: X=] [default: y]`) and its long one (text on the next lines).
fn parse_help(text: &str) -> Help {
    #[derive(PartialEq)]
    enum Section {
        About,
        Usage,
        Commands,
        Arguments,
        Options,
    }
    let mut help = Help::default();
    let mut section = Section::About;
    let mut about = Vec::new();
    let mut current: Option<(HelpOption, Vec<String>)> = None;
    let finish = |current: &mut Option<(HelpOption, Vec<String>)>, help: &mut Help| {
        if let Some((mut option, lines)) = current.take() {
            let (text, notes) = split_notes(&lines.join(" "));
            option.help = text;
            for (key, value) in notes {
                match key.as_str() {
                    "env" => {
                        let name = value.split('=').next().unwrap_or_default();
                        option.env = Some(name.to_owned());
                    }
                    "default" => option.default = Some(value),
                    _ => option.help = format!("{} [{key}: {value}]", option.help),
                }
            }
            help.options.push(option);
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if !line.starts_with(' ') && !trimmed.is_empty() {
            finish(&mut current, &mut help);
            section = match trimmed {
                "Commands:" => Section::Commands,
                "Options:" => Section::Options,
                "Arguments:" => Section::Arguments,
                _ if trimmed.starts_with("Usage:") => Section::Usage,
                _ if section == Section::About => {
                    about.push(trimmed.to_owned());
                    Section::About
                }
                _ => section,
            };
            continue;
        }
        match section {
            Section::About | Section::Usage | Section::Arguments => {}
            Section::Commands => {
                if let Some(name) = trimmed.split_whitespace().next()
                    && name != "help"
                {
                    help.subcommands.push(name.to_owned());
                }
            }
            Section::Options => {
                let indent = line.len() - line.trim_start().len();
                if trimmed.starts_with('-') && indent <= 6 {
                    finish(&mut current, &mut help);
                    current = Some(parse_option_line(trimmed));
                } else if let Some((_, lines)) = current.as_mut()
                    && !trimmed.is_empty()
                {
                    let line = match trimmed.strip_prefix("- ") {
                        Some(value) => match value.split_once(": ") {
                            Some((name, meaning)) => format!("`{name}`: {meaning};"),
                            None => format!("`{value}`;"),
                        },
                        None => trimmed.to_owned(),
                    };
                    lines.push(line);
                }
            }
        }
    }
    finish(&mut current, &mut help);
    help.about = about.join(" ");
    help
}

/// `-n, --name <VALUE>  text` → the option and its first help line.
fn parse_option_line(line: &str) -> (HelpOption, Vec<String>) {
    let (spec, text) = match line.find("  ") {
        Some(at) => (&line[..at], line[at..].trim()),
        None => (line, ""),
    };
    let mut option = HelpOption::default();
    for word in spec.split_whitespace() {
        let word = word.trim_end_matches(',');
        if let Some(long) = word.strip_prefix("--") {
            option.long = format!("--{long}");
        } else if word.starts_with('-') {
            option.short = Some(word.to_owned());
        } else {
            option.value = [option.value.as_str(), word].join(" ").trim().to_owned();
        }
    }
    let lines = if text.is_empty() {
        Vec::new()
    } else {
        vec![text.to_owned()]
    };
    (option, lines)
}

/// Splits the trailing `[key: value]` notes off a help text.
fn split_notes(text: &str) -> (String, Vec<(String, String)>) {
    let mut rest = text.trim().to_owned();
    let mut notes = Vec::new();
    while rest.ends_with(']') {
        let Some(open) = rest
            .rfind(" [")
            .or_else(|| rest.starts_with('[').then_some(0))
        else {
            break;
        };
        let note = rest[open..]
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let Some((key, value)) = note.split_once(": ").or_else(|| {
            // `[env: NAME]` of a hidden value has no `=`, but always a colon.
            note.split_once(':')
        }) else {
            break;
        };
        if !matches!(key, "env" | "default" | "possible values" | "aliases") {
            break;
        }
        notes.push((key.to_owned(), value.trim().to_owned()));
        rest.truncate(open);
        rest = rest.trim_end().to_owned();
    }
    notes.reverse();
    (rest, notes)
}

/// A binary's help and that of every subcommand below it, keyed by the
/// subcommand words (empty for the binary itself).
fn help_tree(binary: &str) -> anyhow::Result<BTreeMap<Vec<String>, Help>> {
    let mut tree = BTreeMap::new();
    let mut pending = vec![Vec::<String>::new()];
    while let Some(words) = pending.pop() {
        let borrowed: Vec<&str> = words.iter().map(String::as_str).collect();
        let help = parse_help(&help_text(binary, &borrowed)?);
        for sub in &help.subcommands {
            let mut next = words.clone();
            next.push(sub.clone());
            pending.push(next);
        }
        tree.insert(words, help);
    }
    Ok(tree)
}

/// What a serving binary (no subcommand) accepts.
fn accepted(binary: &str) -> anyhow::Result<Help> {
    Ok(parse_help(&help_text(binary, &[])?))
}

/// The option read from environment variable `env`.
fn option_for_env<'a>(help: &'a Help, env: &str) -> Option<&'a HelpOption> {
    help.options
        .iter()
        .find(|option| option.env.as_deref() == Some(env))
}

// === manifests ===

/// The documents of `kind`.
fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

/// The document of `kind` named `name`.
fn named<'a>(documents: &'a [Value], kind: &str, name: &str) -> anyhow::Result<&'a Value> {
    of_kind(documents, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name}"))
}

/// The binary an image runs (`imgmesh/renderer:…` → `imgmesh-renderer`).
fn binary_of_image(image: &str) -> anyhow::Result<String> {
    let name = image
        .split(':')
        .next()
        .and_then(|repo| repo.strip_prefix("imgmesh/"))
        .with_context(|| format!("{image} is not an imgmesh image"))?;
    Ok(format!("imgmesh-{name}"))
}

/// A container's settings: environment (literal values; `None` when taken
/// from a ConfigMap or Secret) and `--flags` from its command and args.
#[derive(Debug, Default)]
struct Settings {
    env: BTreeMap<String, Option<String>>,
    flags: BTreeMap<String, Option<String>>,
}

impl Settings {
    /// The value `option` gets: its flag, else its variable, else the
    /// binary's default.
    fn value_of(&self, option: &HelpOption) -> Option<String> {
        if let Some(value) = self.flags.get(&option.long) {
            return value.clone();
        }
        if let Some(env) = &option.env
            && let Some(value) = self.env.get(env)
        {
            return value.clone();
        }
        option.default.clone()
    }
}

/// `--name=value`, `--name value` and `--switch` out of a word list.
fn flags_of(words: &[String]) -> BTreeMap<String, Option<String>> {
    let mut flags = BTreeMap::new();
    let mut words = words.iter().peekable();
    while let Some(word) = words.next() {
        let Some(flag) = word.strip_prefix("--") else {
            continue;
        };
        match flag.split_once('=') {
            Some((name, value)) => {
                flags.insert(format!("--{name}"), Some(value.to_owned()));
            }
            None => {
                let value = words
                    .next_if(|next| !next.starts_with('-'))
                    .map(ToOwned::to_owned);
                flags.insert(format!("--{flag}"), value);
            }
        }
    }
    flags
}

/// A Kubernetes container's settings.
fn container_settings(container: &Value) -> Settings {
    let mut settings = Settings::default();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_owned();
        settings
            .env
            .insert(name, var["value"].as_str().map(ToOwned::to_owned));
    }
    let words: Vec<String> = ["command", "args"]
        .iter()
        .flat_map(|key| container[key].as_array().cloned().unwrap_or_default())
        .filter_map(|word| word.as_str().map(ToOwned::to_owned))
        .collect();
    settings.flags = flags_of(&words);
    settings
}

/// Every variable and flag in `settings` is one `help` lists (or a library
/// variable listed in [`LIBRARY_ENV`] for `binary`); problems are pushed.
fn check_accepted(
    what: &str,
    binary: &str,
    help: &Help,
    settings: &Settings,
    problems: &mut Vec<String>,
) {
    for env in settings.env.keys() {
        let library = LIBRARY_ENV
            .iter()
            .any(|(bin, name, _)| *bin == binary && name == env);
        if option_for_env(help, env).is_none() && !library {
            problems.push(format!("{what}: {binary} reads no variable {env}"));
        }
    }
    for flag in settings.flags.keys() {
        if !help.options.iter().any(|option| &option.long == flag) {
            problems.push(format!("{what}: {binary} has no flag {flag}"));
        }
    }
}

/// The ports a binary listens on with `settings`: listen flag (`--listen`,
/// `--ops-listen`, …) → port, from the flag, the variable or the default.
fn listen_ports(help: &Help, settings: &Settings) -> anyhow::Result<BTreeMap<String, u16>> {
    let mut ports = BTreeMap::new();
    for option in &help.options {
        let name = option.long.trim_start_matches("--");
        if name != "listen" && !name.ends_with("-listen") {
            continue;
        }
        let Some(value) = settings.value_of(option) else {
            continue;
        };
        if value == "off" || value.is_empty() {
            continue;
        }
        let addr: std::net::SocketAddr = value
            .parse()
            .with_context(|| format!("{}={value} is not an address", option.long))?;
        ports.insert(name.to_owned(), addr.port());
    }
    Ok(ports)
}

/// The listener a peer URL option must reach: the `--<role>-listen` its
/// help names (the fetcher's `--registry-url`: the registry's
/// `--credentials-listen`), else the peer's gRPC `--listen`.
fn peer_listener(option: &HelpOption) -> String {
    option
        .help
        .split('`')
        .filter_map(|word| word.strip_prefix("--"))
        .find(|name| name.ends_with("-listen"))
        .unwrap_or("listen")
        .to_owned()
}

/// The default port of a listen flag, from the binary's help.
fn default_port(help: &Help, flag: &str) -> Option<u16> {
    let option = help
        .options
        .iter()
        .find(|o| o.long == format!("--{flag}"))?;
    let addr: std::net::SocketAddr = option.default.as_deref()?.parse().ok()?;
    Some(addr.port())
}

/// A port given by number or by the name of one of the container's ports.
fn resolve_port(port: &Value, container: &Value) -> anyhow::Result<u16> {
    if let Some(number) = port.as_u64() {
        return Ok(u16::try_from(number)?);
    }
    let name = port.as_str().context("a port is neither number nor name")?;
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .map(u16::try_from)
        .transpose()?
        .with_context(|| format!("the container has no port named {name}"))
}

// === tests: rendering and validation ===

/// Both overlays render, and every tier has its Deployment, Service,
/// PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy,
/// ServiceMonitor and Certificate, hardened as the issue asks.
#[test]
fn overlays_render_with_every_piece() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for overlay in OVERLAYS {
        let (_, documents) = rendered(dir.path(), overlay)?;
        for (component, _, _) in TIERS {
            for kind in [
                "Deployment",
                "Service",
                "PodDisruptionBudget",
                "HorizontalPodAutoscaler",
                "NetworkPolicy",
                "ServiceMonitor",
                "Certificate",
            ] {
                named(&documents, kind, component).with_context(|| overlay.to_owned())?;
            }
            let deployment = named(&documents, "Deployment", component)?;
            let pod = &deployment["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{component}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{component}"
            );
            assert_eq!(pod["automountServiceAccountToken"], false, "{component}");
            for container in pod["containers"].as_array().context("containers")? {
                let security = &container["securityContext"];
                assert_eq!(security["readOnlyRootFilesystem"], true, "{component}");
                assert_eq!(security["allowPrivilegeEscalation"], false, "{component}");
                assert_eq!(
                    security["capabilities"]["drop"],
                    json!(["ALL"]),
                    "{component}"
                );
                for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                    assert!(
                        container[probe].is_object(),
                        "{overlay} {component} {probe}"
                    );
                }
                let limits = &container["resources"]["limits"]["memory"];
                let requests = &container["resources"]["requests"];
                assert!(limits.is_string(), "{component} has a memory limit");
                assert!(requests["cpu"].is_string() && requests["memory"].is_string());
            }
            if component != "gateway" {
                let service = named(&documents, "Service", component)?;
                assert_eq!(
                    service["spec"]["clusterIP"], "None",
                    "{component} is headless"
                );
            }
        }
        // The renderer scales on its render-load gauge, with CPU beside it.
        let hpa = named(&documents, "HorizontalPodAutoscaler", "renderer")?;
        let metrics = hpa["spec"]["metrics"].as_array().context("metrics")?;
        let gauge = metrics
            .iter()
            .find(|m| m["type"] == "Pods")
            .context("the renderer HPA has no Pods metric")?;
        assert_eq!(
            gauge["pods"]["metric"]["name"],
            "imgmesh_render_queue_depth"
        );
        assert!(metrics.iter().any(|m| m["resource"]["name"] == "cpu"));
    }
    Ok(())
}

/// The renderer's HPA names a gauge the renderer really exports: it is in
/// the renderer's metrics source as a registered gauge.
#[test]
fn renderer_hpa_gauge_exists() -> anyhow::Result<()> {
    let source = std::fs::read_to_string(repo_root().join("services/renderer/src/metrics.rs"))?;
    let dir = tempfile::tempdir()?;
    let (_, documents) = rendered(dir.path(), "production")?;
    let hpa = named(&documents, "HorizontalPodAutoscaler", "renderer")?;
    for metric in hpa["spec"]["metrics"].as_array().context("metrics")? {
        if let Some(name) = metric["pods"]["metric"]["name"].as_str() {
            let registered = format!("\"{name}\"");
            assert!(
                source.contains(&registered),
                "services/renderer/src/metrics.rs registers no metric {name}"
            );
        }
    }
    Ok(())
}

/// `kubernetes-validate --strict` accepts every rendered overlay and
/// refuses one with an unknown field in a container.
#[test]
fn overlays_pass_kubernetes_validate_strict() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for overlay in OVERLAYS {
        let (path, documents) = rendered(dir.path(), overlay)?;
        let output = run(kit_tool("kubernetes-validate")?
            .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
            .arg(&path))?;
        let report = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{overlay}:\n{report}");
        // Every built-in kind was checked; only the CRDs have no schema
        // there (they are checked below).
        for document in &documents {
            let kind = document["kind"].as_str().unwrap_or_default().to_lowercase();
            let name = document["metadata"]["name"].as_str().unwrap_or_default();
            if kind == "servicemonitor" || kind == "certificate" {
                continue;
            }
            assert!(
                report.contains(&format!("passed for resource {kind}/{name}")),
                "{overlay}: {kind}/{name} was not validated:\n{report}"
            );
        }

        let mut broken = documents.clone();
        let deployment = broken
            .iter_mut()
            .find(|d| d["kind"] == "Deployment")
            .context("a Deployment")?;
        deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] =
            json!({"grpc": {"port": 1}});
        let broken_path = dir.path().join(format!("{overlay}-broken.yaml"));
        write_documents(&broken_path, &broken)?;
        let output = run(kit_tool("kubernetes-validate")?
            .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
            .arg(&broken_path))?;
        assert!(
            !output.status.success(),
            "kubernetes-validate accepted an unknown field:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    Ok(())
}

/// The schema of ServiceMonitor v1 out of the vendored CRD, made strict.
fn service_monitor_schema(dir: &Path) -> anyhow::Result<PathBuf> {
    let schema = dir.join("servicemonitor.json");
    let mut python = Command::new("python3");
    python
        .env("PYTHONPATH", kit_dir())
        .arg("-c")
        .arg(
            "import json, sys, yaml\n\
             crd = yaml.safe_load(open(sys.argv[1]))\n\
             [v1] = [v for v in crd['spec']['versions'] if v['name'] == 'v1']\n\
             schema = v1['schema']['openAPIV3Schema']\n\
             def strict(node):\n\
             \x20   if isinstance(node, dict):\n\
             \x20       if node.get('type') == 'object' and 'properties' in node \\\n\
             \x20               and 'additionalProperties' not in node \\\n\
             \x20               and not node.get('x-kubernetes-preserve-unknown-fields'):\n\
             \x20           node['additionalProperties'] = False\n\
             \x20       for value in node.values(): strict(value)\n\
             \x20   elif isinstance(node, list):\n\
             \x20       for value in node: strict(value)\n\
             strict(schema)\n\
             schema['properties']['metadata'] = {'type': 'object'}\n\
             schema['required'] = ['apiVersion', 'kind', 'metadata', 'spec']\n\
             json.dump(schema, open(sys.argv[2], 'w'))",
        )
        .arg(repo_root().join("deploy/schemas/monitoring.coreos.com_servicemonitors.yaml"))
        .arg(&schema);
    run_ok(&mut python)?;
    Ok(schema)
}

/// Every rendered ServiceMonitor passes the Prometheus Operator's CRD
/// schema; one with a misspelt endpoint field does not.
#[test]
fn service_monitors_pass_the_crd_schema() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let schema = service_monitor_schema(dir.path())?;
    let check = |path: &Path| -> anyhow::Result<Output> {
        run(kit_tool("check-jsonschema")?
            .arg("--schemafile")
            .arg(&schema)
            .arg(path))
    };
    for overlay in OVERLAYS {
        let (_, documents) = rendered(dir.path(), overlay)?;
        let monitors = of_kind(&documents, "ServiceMonitor");
        assert_eq!(monitors.len(), TIERS.len(), "{overlay}");
        let mut paths = Vec::new();
        for monitor in &monitors {
            let name = monitor["metadata"]["name"].as_str().unwrap_or_default();
            let path = dir.path().join(format!("{overlay}-{name}.json"));
            std::fs::write(&path, monitor.to_string())?;
            paths.push(path);
        }
        let output = run(kit_tool("check-jsonschema")?
            .arg("--schemafile")
            .arg(&schema)
            .args(&paths))?;
        assert!(
            output.status.success(),
            "{overlay}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let mut broken = monitors[0].clone();
        broken["spec"]["endpoints"][0]["intervall"] = json!("15s");
        let path = dir.path().join("broken.json");
        std::fs::write(&path, broken.to_string())?;
        assert!(!check(&path)?.status.success(), "a misspelt field passed");
    }
    Ok(())
}

/// Every rendered cert-manager Certificate passes the schema of
/// cert-manager's documented `Certificate` fields (deploy/schemas/), and
/// one with a misspelt field does not. Each tier's certificate carries its
/// identity as the only URI SAN (`spiffe://imgmesh/<component>`), the name
/// its clients dial (the Service's), both TLS usages, and lands in the
/// Secret its pods mount whole (no `subPath`, so renewals reach them) at
/// the paths of its IMGMESH_TLS_* variables.
#[test]
fn certificates_name_each_tier_and_reach_its_pods() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let schema = repo_root().join("deploy/schemas/cert-manager.io_certificate.schema.json");
    let check = |path: &Path| -> anyhow::Result<Output> {
        run(kit_tool("check-jsonschema")?
            .arg("--schemafile")
            .arg(&schema)
            .arg(path))
    };
    for overlay in OVERLAYS {
        let (_, documents) = rendered(dir.path(), overlay)?;
        let certificates = of_kind(&documents, "Certificate");
        assert_eq!(certificates.len(), TIERS.len(), "{overlay}");
        for certificate in &certificates {
            let name = certificate["metadata"]["name"].as_str().unwrap_or_default();
            let path = dir
                .path()
                .join(format!("{overlay}-certificate-{name}.json"));
            std::fs::write(&path, certificate.to_string())?;
            let output = check(&path)?;
            assert!(
                output.status.success(),
                "{overlay} {name}: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        let mut broken = certificates[0].clone();
        broken["spec"]["dnsName"] = json!(["typo"]);
        let path = dir.path().join("broken-certificate.json");
        std::fs::write(&path, broken.to_string())?;
        assert!(!check(&path)?.status.success(), "a misspelt field passed");

        for (component, _, _) in TIERS {
            let spec = &named(&documents, "Certificate", component)?["spec"];
            assert_eq!(
                spec["uris"],
                json!([format!("spiffe://imgmesh/{component}")]),
                "{overlay} {component}"
            );
            let dns: Vec<&str> = spec["dnsNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                named(&documents, "Service", component).is_ok() && dns.contains(&component),
                "{overlay} {component}: {dns:?} lacks the Service's name"
            );
            for usage in ["server auth", "client auth"] {
                assert!(
                    spec["usages"]
                        .as_array()
                        .is_some_and(|usages| usages.contains(&json!(usage))),
                    "{overlay} {component}: no {usage}"
                );
            }
            let secret = spec["secretName"].as_str().context("a secretName")?;
            let pod = &named(&documents, "Deployment", component)?["spec"]["template"]["spec"];
            let volume = pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|volume| volume["secret"]["secretName"] == secret)
                .with_context(|| format!("{overlay} {component} mounts no {secret}"))?;
            let container = &pod["containers"][0];
            let mount = container["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|mount| mount["name"] == volume["name"])
                .with_context(|| format!("{overlay} {component}: {secret} not mounted"))?;
            assert_eq!(mount["readOnly"], true, "{overlay} {component}");
            assert!(mount["subPath"].is_null(), "{overlay} {component}");
            let mount_path = mount["mountPath"].as_str().unwrap_or_default();
            let settings = container_settings(container);
            for (var, file) in [
                ("IMGMESH_TLS_CERT", "tls.crt"),
                ("IMGMESH_TLS_KEY", "tls.key"),
                ("IMGMESH_TLS_CA", "ca.crt"),
            ] {
                assert_eq!(
                    settings.env.get(var).cloned().flatten(),
                    Some(format!("{mount_path}/{file}")),
                    "{overlay} {component} {var}"
                );
            }
            assert!(
                !settings.env.contains_key("IMGMESH_INSECURE_PLAINTEXT"),
                "{overlay} {component} runs plaintext"
            );
        }
    }
    Ok(())
}

/// yamllint (deploy/yamllint.yaml) passes on docker-compose.yml, deploy/
/// and the rendered overlays, and fails on a file it should fail on.
#[test]
fn yaml_is_lint_clean() -> anyhow::Result<()> {
    let config = repo_root().join("deploy/yamllint.yaml");
    let lint = |paths: &[&Path]| -> anyhow::Result<Output> {
        run(kit_tool("yamllint")?
            .arg("--strict")
            .arg("-c")
            .arg(&config)
            .args(paths))
    };
    let output = lint(&[Path::new("docker-compose.yml"), Path::new("deploy")])?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let dir = tempfile::tempdir()?;
    for overlay in OVERLAYS {
        let (path, _) = rendered(dir.path(), overlay)?;
        let output = lint(&[&path])?;
        assert!(
            output.status.success(),
            "{overlay}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "a: 1\na: 2\n")?;
    assert!(
        !lint(&[&bad])?.status.success(),
        "yamllint accepted a duplicate key"
    );
    Ok(())
}

/// docker-compose.yml passes the compose-spec schema; a copy with an
/// unknown service key does not.
#[test]
fn compose_passes_the_compose_spec_schema() -> anyhow::Result<()> {
    let schema = repo_root().join("deploy/schemas/compose-spec.json");
    let check = |path: &Path| -> anyhow::Result<Output> {
        run(kit_tool("check-jsonschema")?
            .arg("--schemafile")
            .arg(&schema)
            .arg(path))
    };
    let output = check(&repo_root().join("docker-compose.yml"))?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let mut compose = yaml_documents(&repo_root().join("docker-compose.yml"))?
        .pop()
        .context("an empty compose file")?;
    compose["services"]["gateway"]["healthcheks"] = json!({"test": ["NONE"]});
    let dir = tempfile::tempdir()?;
    let broken = dir.path().join("compose.yaml");
    std::fs::write(&broken, compose.to_string())?;
    assert!(
        !check(&broken)?.status.success(),
        "the compose schema accepted an unknown key"
    );
    Ok(())
}

/// Every ConfigMap key a container reads exists in the rendered ConfigMap,
/// and every key of the `imgmesh-secrets` Secret the pods read is one the
/// `kubectl create secret` command in docs/operations.md creates (the kit
/// ships no Secret); every other Secret a pod mounts is one a rendered
/// Certificate issues.
#[test]
fn config_and_secret_references_resolve() -> anyhow::Result<()> {
    let docs = std::fs::read_to_string(repo_root().join("docs/operations.md"))?;
    let dir = tempfile::tempdir()?;
    let mut problems = Vec::new();
    for overlay in OVERLAYS {
        let (_, documents) = rendered(dir.path(), overlay)?;
        let mut secret_keys = BTreeSet::new();
        for deployment in of_kind(&documents, "Deployment") {
            let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
            let pod = &deployment["spec"]["template"]["spec"];
            for container in pod["containers"].as_array().into_iter().flatten() {
                for var in container["env"].as_array().into_iter().flatten() {
                    let from = &var["valueFrom"];
                    if let Some(reference) = from["configMapKeyRef"].as_object() {
                        let map = reference["name"].as_str().unwrap_or_default();
                        let key = reference["key"].as_str().unwrap_or_default();
                        let found = named(&documents, "ConfigMap", map)
                            .ok()
                            .is_some_and(|m| m["data"][key].is_string());
                        if !found {
                            problems
                                .push(format!("{overlay} {name}: no ConfigMap key {map}/{key}"));
                        }
                    }
                    if let Some(reference) = from["secretKeyRef"].as_object() {
                        ensure!(
                            reference["name"] == "imgmesh-secrets",
                            "{name}: {reference:?}"
                        );
                        secret_keys
                            .insert(reference["key"].as_str().unwrap_or_default().to_owned());
                    }
                }
            }
            for volume in pod["volumes"].as_array().into_iter().flatten() {
                let Some(secret) = volume["secret"].as_object() else {
                    continue;
                };
                // A tier's TLS Secret comes from its Certificate.
                let issued = of_kind(&documents, "Certificate")
                    .iter()
                    .any(|c| c["spec"]["secretName"] == secret["secretName"]);
                if issued {
                    continue;
                }
                ensure!(
                    secret["secretName"] == "imgmesh-secrets",
                    "{name}: {secret:?}"
                );
                let items = secret.get("items").and_then(Value::as_array);
                ensure!(items.is_some(), "{name}: mount the Secret's keys by name");
                for item in items.into_iter().flatten() {
                    secret_keys.insert(item["key"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        ensure!(!secret_keys.is_empty(), "{overlay}: no Secret is read");
        for key in &secret_keys {
            if !docs.contains(&format!("--from-file={key}=")) {
                problems.push(format!(
                    "docs/operations.md does not create Secret key {key}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

// === tests: flags, variables and ports against the binaries ===

/// Every environment variable and flag a rendered container sets is one
/// its binary accepts.
#[test]
fn manifests_use_only_accepted_settings() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut problems = Vec::new();
    let mut helps = BTreeMap::new();
    for overlay in OVERLAYS {
        let (_, documents) = rendered(dir.path(), overlay)?;
        for deployment in of_kind(&documents, "Deployment") {
            let containers = deployment["spec"]["template"]["spec"]["containers"]
                .as_array()
                .context("containers")?;
            for container in containers {
                let binary = binary_of_image(container["image"].as_str().unwrap_or_default())?;
                if !helps.contains_key(&binary) {
                    helps.insert(binary.clone(), accepted(&binary)?);
                }
                let what = format!("{overlay} {}", deployment["metadata"]["name"]);
                check_accepted(
                    &what,
                    &binary,
                    &helps[&binary],
                    &container_settings(container),
                    &mut problems,
                );
            }
        }
    }
    assert_eq!(helps.len(), TIERS.len(), "every tier's binary was checked");
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

/// The compose services' binaries: from the Dockerfile they build.
fn compose_binary(service: &Value) -> Option<String> {
    let dockerfile = service["build"]["dockerfile"].as_str()?;
    if dockerfile == "cli/Dockerfile" {
        return Some("imgmesh".to_owned());
    }
    let name = dockerfile
        .strip_prefix("services/")?
        .strip_suffix("/Dockerfile")?;
    Some(format!("imgmesh-{name}"))
}

/// The environment of a compose service (list or map form).
fn compose_env(service: &Value) -> BTreeMap<String, Option<String>> {
    let mut env = BTreeMap::new();
    match &service["environment"] {
        Value::Object(map) => {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                };
                env.insert(name.clone(), value);
            }
        }
        Value::Array(list) => {
            for item in list.iter().filter_map(Value::as_str) {
                let (name, value) = item.split_once('=').unwrap_or((item, ""));
                env.insert(name.to_owned(), Some(value.to_owned()));
            }
        }
        _ => {}
    }
    env
}

/// Every `imgmesh …` invocation in a shell command: the words after
/// `imgmesh` (shell redirections dropped).
fn cli_invocations(script: &str) -> Vec<Vec<String>> {
    let mut invocations = Vec::new();
    for part in script.split(['|', ';', '&', '\n']) {
        let words: Vec<String> = part
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_owned())
            .collect();
        let Some(start) = words.iter().position(|w| w == "imgmesh") else {
            continue;
        };
        let rest = words[start + 1..]
            .iter()
            .filter(|w| !w.starts_with(['>', '<']) && !w.ends_with('>'))
            .cloned()
            .collect();
        invocations.push(rest);
    }
    invocations
}

/// Every environment variable and flag in docker-compose.yml is one the
/// binary of its service accepts; the seed's CLI calls use only flags of
/// the subcommands they call.
#[test]
fn compose_uses_only_accepted_settings() -> anyhow::Result<()> {
    let compose = yaml_documents(&repo_root().join("docker-compose.yml"))?
        .pop()
        .context("an empty compose file")?;
    let mut problems = Vec::new();
    let mut checked = BTreeSet::new();
    let cli = help_tree("imgmesh")?;
    for (name, service) in compose["services"].as_object().context("services")? {
        let Some(binary) = compose_binary(service) else {
            continue;
        };
        checked.insert(binary.clone());
        let env = compose_env(service);
        if binary == "imgmesh" {
            let script: Vec<String> = service["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| w.as_str().map(ToOwned::to_owned))
                .collect();
            let invocations = cli_invocations(&script.join(" "));
            ensure!(!invocations.is_empty(), "{name} calls no imgmesh command");
            let mut env_seen = BTreeSet::new();
            for rest in invocations {
                // The longest run of leading words that is a subcommand.
                let mut words = Vec::new();
                for word in &rest {
                    let mut longer = words.clone();
                    longer.push(word.clone());
                    if !cli.contains_key(&longer) {
                        break;
                    }
                    words = longer;
                }
                ensure!(
                    !words.is_empty(),
                    "{name}: `imgmesh {rest:?}` names no command"
                );
                let help = &cli[&words];
                let settings = Settings {
                    env: env.clone(),
                    flags: flags_of(&rest),
                };
                for flag in settings.flags.keys() {
                    if !help.options.iter().any(|option| &option.long == flag) {
                        problems.push(format!("{name}: imgmesh {words:?} has no flag {flag}"));
                    }
                }
                // The top-level flags (the TLS ones) apply to every command.
                for var in env.keys() {
                    if option_for_env(help, var).is_some()
                        || option_for_env(&cli[&Vec::new()], var).is_some()
                    {
                        env_seen.insert(var.clone());
                    }
                }
            }
            for var in env.keys().filter(|var| !env_seen.contains(*var)) {
                problems.push(format!("{name}: no imgmesh command it runs reads {var}"));
            }
        } else {
            let help = accepted(&binary)?;
            let settings = Settings {
                env,
                flags: flags_of(&[]),
            };
            check_accepted(name, &binary, &help, &settings, &mut problems);
        }
    }
    assert_eq!(checked.len(), TIERS.len() + 1, "{checked:?}");
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

/// Ports in the manifests are the ports the services listen on: every
/// container port is a listener's; gRPC and TCP probes hit `--listen`,
/// HTTP probes the plaintext metrics listener (the gateway's ops one), whose
/// `/ready` and `/live` answer without a certificate; every listener (the metrics ones included)
/// has a fixed default port, which the manifests keep, on all interfaces; every Service targets a
/// listener, every ServiceMonitor the metrics listener, every NetworkPolicy
/// ingress port a listener of the pods it selects, and every peer URL a
/// Service port of the right tier and listener (the fetcher's registry URL
/// the registry's credentials port).
#[test]
fn manifest_ports_are_listening_ports() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut problems = Vec::new();
    for overlay in OVERLAYS {
        let (_, documents) = rendered(dir.path(), overlay)?;
        // component → (listen flag → port)
        let mut listeners: BTreeMap<&str, BTreeMap<String, u16>> = BTreeMap::new();
        for (component, binary, metrics_flag) in TIERS {
            let help = accepted(binary)?;
            let deployment = named(&documents, "Deployment", component)?;
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            let settings = container_settings(container);
            let ports = listen_ports(&help, &settings)?;
            let what = format!("{overlay} {component}");

            for (flag, port) in &ports {
                let default = default_port(&help, flag).context("a listen default")?;
                if default == 0 {
                    problems.push(format!("{what}: --{flag} has no fixed default port"));
                } else if default != *port {
                    problems.push(format!(
                        "{what}: --{flag} on port {port}, the binary's default is {default}"
                    ));
                }
                let option = help
                    .options
                    .iter()
                    .find(|o| o.long == format!("--{flag}"))
                    .context("the listen option")?;
                let value = settings.value_of(option).unwrap_or_default();
                if !value.starts_with("0.0.0.0:") && !value.starts_with("[::]:") {
                    problems.push(format!(
                        "{what}: --{flag}={value} is not reachable from other pods"
                    ));
                }
            }
            let metrics_port = ports.get(metrics_flag).copied();
            match metrics_port {
                Some(0) | None => problems.push(format!("{what}: no fixed metrics port")),
                Some(_) => {}
            }

            for port in container["ports"].as_array().into_iter().flatten() {
                let number = port["containerPort"].as_u64().unwrap_or_default();
                if !ports.values().any(|p| u64::from(*p) == number) {
                    problems.push(format!("{what}: containerPort {number} is no listener's"));
                }
            }
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                let probe_spec = &container[probe];
                let (kind, port) = if probe_spec["grpc"].is_object() {
                    ("grpc", &probe_spec["grpc"]["port"])
                } else if probe_spec["httpGet"].is_object() {
                    ("http", &probe_spec["httpGet"]["port"])
                } else if probe_spec["tcpSocket"].is_object() {
                    ("tcp", &probe_spec["tcpSocket"]["port"])
                } else {
                    problems.push(format!("{what}: {probe} has no probe"));
                    continue;
                };
                let port = resolve_port(port, container)?;
                let expected = match kind {
                    "http" => ports.get(metrics_flag),
                    _ => ports.get("listen"),
                };
                if expected != Some(&port) {
                    problems.push(format!(
                        "{what}: {probe} ({kind}) on {port}, not {expected:?}"
                    ));
                }
                if kind == "http" {
                    let path = probe_spec["httpGet"]["path"].as_str().unwrap_or_default();
                    let wanted = if probe == "readinessProbe" {
                        "/ready"
                    } else {
                        "/live"
                    };
                    if path != wanted {
                        problems.push(format!("{what}: {probe} asks {path}, not {wanted}"));
                    }
                }
            }
            listeners.insert(component, ports);
        }

        // Services → listeners; ServiceMonitors → metrics listeners.
        // Service name → (component it selects, its labels, port name or
        // `#number` → target port).
        let mut service_ports: BTreeMap<String, (String, Value, BTreeMap<String, u16>)> =
            BTreeMap::new();
        for service in of_kind(&documents, "Service") {
            let name = service["metadata"]["name"].as_str().unwrap_or_default();
            let component = service["spec"]["selector"]["app.kubernetes.io/component"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let deployment = named(&documents, "Deployment", &component)?;
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            let mut by_name = BTreeMap::new();
            for port in service["spec"]["ports"].as_array().into_iter().flatten() {
                let target = resolve_port(&port["targetPort"], container)?;
                if !listeners[component.as_str()].values().any(|p| *p == target) {
                    problems.push(format!(
                        "{overlay} Service {name}: targets {target}, no listener"
                    ));
                }
                let port_name = port["name"].as_str().unwrap_or_default().to_owned();
                by_name.insert(port_name.clone(), target);
                let number = u16::try_from(port["port"].as_u64().unwrap_or_default())?;
                by_name.insert(format!("#{number}"), target);
            }
            let labels = service["metadata"]["labels"].clone();
            service_ports.insert(name.to_owned(), (component, labels, by_name));
        }
        for (component, _, metrics_flag) in TIERS {
            let monitor = named(&documents, "ServiceMonitor", component)?;
            let wanted = monitor["spec"]["selector"]["matchLabels"]
                .as_object()
                .context("a ServiceMonitor selector")?;
            let selected: Vec<&String> = service_ports
                .iter()
                .filter(|(_, (_, labels, _))| wanted.iter().all(|(k, v)| &labels[k] == v))
                .map(|(name, _)| name)
                .collect();
            if selected.is_empty() {
                problems.push(format!(
                    "{overlay} ServiceMonitor {component} selects no Service"
                ));
            }
            for endpoint in monitor["spec"]["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let port_name = endpoint["port"].as_str().unwrap_or_default();
                let targets: Vec<u16> = selected
                    .iter()
                    .filter_map(|name| service_ports[*name].2.get(port_name).copied())
                    .collect();
                let metrics = listeners[component][metrics_flag];
                if targets.is_empty() || targets.iter().any(|t| *t != metrics) {
                    problems.push(format!(
                        "{overlay} ServiceMonitor {component}: port {port_name} → {targets:?}, \
                         metrics listen on {metrics}"
                    ));
                }
                if endpoint["path"] != "/metrics" {
                    problems.push(format!(
                        "{overlay} ServiceMonitor {component}: not /metrics"
                    ));
                }
            }
        }

        // NetworkPolicy ingress ports are listeners of the selected pods.
        for policy in of_kind(&documents, "NetworkPolicy") {
            let name = policy["metadata"]["name"].as_str().unwrap_or_default();
            let Some(component) =
                policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                    .as_str()
            else {
                continue;
            };
            for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
                for port in rule["ports"].as_array().into_iter().flatten() {
                    let number = u16::try_from(port["port"].as_u64().unwrap_or_default())?;
                    if !listeners[component].values().any(|p| *p == number) {
                        problems.push(format!(
                            "{overlay} NetworkPolicy {name}: ingress port {number} is no listener"
                        ));
                    }
                }
            }
        }

        // Peer URLs name a Service port that reaches the right tier's
        // gRPC listener.
        for (component, binary, _) in TIERS {
            let help = accepted(binary)?;
            let deployment = named(&documents, "Deployment", component)?;
            let settings =
                container_settings(&deployment["spec"]["template"]["spec"]["containers"][0]);
            for (peer_flag, peer) in [
                ("--registry-url", "source-registry"),
                ("--fetcher-url", "fetcher"),
                ("--renderer-url", "renderer"),
            ] {
                let Some(option) = help.options.iter().find(|o| o.long == peer_flag) else {
                    continue;
                };
                let url = settings.value_of(option).unwrap_or_default();
                let authority = url
                    .strip_prefix("http://")
                    .unwrap_or(&url)
                    .trim_end_matches('/');
                let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "80"));
                let reached = service_ports
                    .get(host)
                    .filter(|(c, _, _)| c == peer)
                    .and_then(|(_, _, ports)| ports.get(&format!("#{port}")));
                let wanted = peer_listener(option);
                if reached != listeners[peer].get(&wanted) {
                    problems.push(format!(
                        "{overlay} {component}: {peer_flag}={url} does not reach {peer}'s --{wanted}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

/// Only the fetchers may reach the registry's credentials port (its
/// `--credentials-listen` default): in every overlay exactly one ingress
/// rule of the registry's NetworkPolicy opens it, to the fetcher pods
/// alone, and no rule opens every port.
#[test]
fn only_fetchers_reach_the_credentials_port() -> anyhow::Result<()> {
    let help = accepted("imgmesh-source-registry")?;
    let credentials =
        default_port(&help, "credentials-listen").context("a --credentials-listen default")?;
    let fetchers = json!([{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "imgmesh",
        "app.kubernetes.io/component": "fetcher",
    }}}]);
    let dir = tempfile::tempdir()?;
    for overlay in OVERLAYS {
        let (_, documents) = rendered(dir.path(), overlay)?;
        let policy = named(&documents, "NetworkPolicy", "source-registry")?;
        let mut opening = 0;
        for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
            let ports: Vec<u64> = rule["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|port| port["port"].as_u64())
                .collect();
            ensure!(!ports.is_empty(), "{overlay}: a rule opens every port");
            if ports.contains(&u64::from(credentials)) {
                opening += 1;
                assert_eq!(rule["from"], fetchers, "{overlay}: {rule}");
            }
        }
        assert_eq!(opening, 1, "{overlay}: rules opening port {credentials}");
    }
    Ok(())
}

/// Ports in docker-compose.yml: every peer URL names a compose service and
/// the port that service's binary listens on; each tier's metrics listener
/// is fixed and on all interfaces; published ports are listeners.
#[test]
fn compose_ports_are_listening_ports() -> anyhow::Result<()> {
    let compose = yaml_documents(&repo_root().join("docker-compose.yml"))?
        .pop()
        .context("an empty compose file")?;
    let services = compose["services"].as_object().context("services")?;
    let mut problems = Vec::new();
    let mut listeners: BTreeMap<String, (String, BTreeMap<String, u16>)> = BTreeMap::new();
    for (name, service) in services {
        let Some(binary) = compose_binary(service).filter(|b| b != "imgmesh") else {
            continue;
        };
        let help = accepted(&binary)?;
        let settings = Settings {
            env: compose_env(service),
            flags: BTreeMap::new(),
        };
        let ports = listen_ports(&help, &settings)?;
        listeners.insert(name.clone(), (binary, ports));
    }
    for (name, (binary, ports)) in &listeners {
        let metrics_flag = TIERS
            .iter()
            .find(|(_, b, _)| b == binary)
            .map(|(_, _, flag)| *flag)
            .context("a tier")?;
        if matches!(ports.get(metrics_flag), None | Some(0)) {
            problems.push(format!("{name}: no fixed metrics port"));
        }
        let help = accepted(binary)?;
        let env = compose_env(&services[name]);
        for flag in ports.keys() {
            let option = help.options.iter().find(|o| o.long == format!("--{flag}"));
            let value = option
                .and_then(|o| o.env.as_ref())
                .and_then(|e| env.get(e).cloned().flatten());
            if !value.as_deref().unwrap_or_default().starts_with("0.0.0.0:") {
                problems.push(format!(
                    "{name}: --{flag} is not set to listen on all interfaces"
                ));
            }
        }
        for (var, value) in &env {
            let Some(url) = value.as_deref().and_then(|v| v.strip_prefix("http://")) else {
                continue;
            };
            if !var.ends_with("_URL") || var.starts_with("OTEL_") {
                continue;
            }
            let (host, port) = url.rsplit_once(':').context("a port in the URL")?;
            let port: u16 = port.trim_end_matches('/').parse()?;
            match listeners.get(host) {
                Some((_, peer))
                    if option_for_env(&help, var)
                        .is_some_and(|option| peer.get(&peer_listener(option)) == Some(&port)) => {}
                Some(_) => problems.push(format!(
                    "{name}: {var} port {port} is not the {host} port it needs"
                )),
                None if services.contains_key(host) => {}
                None => problems.push(format!("{name}: {var} names no service {host}")),
            }
        }
        for published in services[name]["ports"].as_array().into_iter().flatten() {
            let text = published.as_str().unwrap_or_default();
            let container_port: u16 = text.rsplit(':').next().unwrap_or_default().parse()?;
            if !ports.values().any(|p| *p == container_port) {
                problems.push(format!("{name}: publishes {container_port}, no listener"));
            }
        }
    }
    assert_eq!(listeners.len(), TIERS.len());
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

/// One imgmesh service's healthcheck: the binary whose `health`
/// subcommand it runs, and the environment it runs in (the compose
/// service's, or none for an image's).
#[derive(Debug)]
struct Healthcheck {
    service: String,
    binary: String,
    env: BTreeMap<String, String>,
}

/// The command a healthcheck of `binary` must run: the image's binary with
/// its `health` subcommand.
fn health_command(binary: &str) -> Vec<String> {
    vec![format!("/usr/local/bin/{binary}"), "health".to_owned()]
}

/// The healthchecks of the compose services built from our Dockerfiles,
/// each the service's own `health` subcommand.
fn compose_healthchecks(compose: &Value) -> anyhow::Result<Vec<Healthcheck>> {
    let mut checks = Vec::new();
    let services = compose["services"].as_object().context("services")?;
    for (name, service) in services {
        let Some(binary) = compose_binary(service).filter(|b| b != "imgmesh") else {
            continue;
        };
        let test: Vec<&str> = service["healthcheck"]["test"]
            .as_array()
            .with_context(|| format!("{name} has no healthcheck"))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let wanted = health_command(&binary);
        ensure!(
            test.first() == Some(&"CMD") && test[1..] == wanted,
            "{name}: the healthcheck is not [CMD, {wanted:?}]: {test:?}"
        );
        let env = compose_env(service)
            .into_iter()
            .filter_map(|(var, value)| value.map(|value| (var, value)))
            .collect();
        checks.push(Healthcheck {
            service: name.clone(),
            binary,
            env,
        });
    }
    Ok(checks)
}

/// Runs a healthcheck against the mesh's own port for the listener it asks
/// (the gateway's ops listener, the others' metrics one: plaintext HTTP,
/// as the gRPC ports take only mutual TLS), set through that listener's
/// variable; whether it passed.
fn run_healthcheck(check: &Healthcheck, port: u16) -> anyhow::Result<bool> {
    let role = if check.binary == "imgmesh-gateway" {
        "--ops-listen"
    } else {
        "--metrics-listen"
    };
    let help = accepted(&check.binary)?;
    let var = help
        .options
        .iter()
        .find(|option| option.long == role)
        .and_then(|option| option.env.clone())
        .with_context(|| format!("{} has no variable for {role}", check.binary))?;
    let output = run(Command::new(binary_path(&check.binary)?)
        .env_clear()
        .envs(&check.env)
        .env(var, format!("127.0.0.1:{port}"))
        .arg("health"))?;
    Ok(output.status.success())
}

/// The compose healthchecks and the images' HEALTHCHECKs (each binary's
/// `health` subcommand) tell up from down on the real processes: each
/// passes against a running mesh; with the renderer killed its own check
/// and the gateway's (its `/ready`) fail while the others still pass; with
/// the registry killed too its check fails and so does the fetcher's (it
/// cannot serve without a registry). Every `service_healthy` dependency
/// names a service with a healthcheck.
#[tokio::test]
async fn compose_healthchecks_tell_up_from_down() -> anyhow::Result<()> {
    let compose = yaml_documents(&repo_root().join("docker-compose.yml"))?
        .pop()
        .context("an empty compose file")?;
    let services = compose["services"].as_object().context("services")?;
    for (name, service) in services {
        for (dependency, condition) in service["depends_on"].as_object().into_iter().flatten() {
            if condition["condition"] == "service_healthy" {
                ensure!(
                    services[dependency]["healthcheck"]["test"].is_array(),
                    "{name} waits for {dependency} to be healthy, which has no healthcheck"
                );
            }
        }
    }
    let mut checks = compose_healthchecks(&compose)?;
    assert_eq!(checks.len(), TIERS.len(), "{checks:?}");
    let mut image_checks = Vec::new();
    for (component, binary, _) in TIERS {
        image_checks.push(image_healthcheck(component, binary)?);
    }
    // Keyed `<service>` for compose's checks and `<service> image` for the
    // images'.
    let labels: Vec<String> = checks
        .iter()
        .map(|c| c.service.clone())
        .chain(image_checks.iter().map(|c| format!("{} image", c.service)))
        .collect();
    checks.extend(image_checks);

    let mut mesh = Mesh::start(MeshOptions::default()).await?;
    let port_of = |mesh: &Mesh, service: &str| -> anyhow::Result<u16> {
        match service {
            "source-registry" | "fetcher" | "renderer" => Ok(mesh.metrics_addr(service).port()),
            "gateway" => Ok(mesh.gateway_ops_addr.port()),
            other => bail!("no mesh process for {other}"),
        }
    };
    let states = |mesh: &Mesh| -> anyhow::Result<BTreeMap<String, bool>> {
        let mut states = BTreeMap::new();
        for (check, label) in checks.iter().zip(&labels) {
            let healthy = run_healthcheck(check, port_of(mesh, &check.service)?)?;
            states.insert(label.clone(), healthy);
        }
        Ok(states)
    };
    let expect = |down: &[&str]| -> BTreeMap<String, bool> {
        checks
            .iter()
            .zip(&labels)
            .map(|(c, label)| (label.clone(), !down.contains(&c.service.as_str())))
            .collect()
    };
    assert_eq!(states(&mesh)?, expect(&[]), "everything runs");

    // The gateway and the fetcher check their peers every two seconds:
    // poll.
    let settle = |mesh: &Mesh, wanted: BTreeMap<String, bool>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let mut seen = states(mesh)?;
        while seen != wanted && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
            seen = states(mesh)?;
        }
        anyhow::Ok((seen, wanted))
    };
    mesh.renderer.kill();
    let (seen, wanted) = settle(&mesh, expect(&["renderer", "gateway"]))?;
    assert_eq!(seen, wanted, "renderer killed");

    mesh.registry.kill();
    let (seen, wanted) = settle(
        &mesh,
        expect(&["renderer", "gateway", "source-registry", "fetcher"]),
    )?;
    assert_eq!(seen, wanted, "registry killed too");
    Ok(())
}

// === tests: the images ===

/// One service Dockerfile's final stage, read line by line (continuations
/// joined).
#[derive(Debug, Default)]
struct Image {
    /// Every instruction of the file, continuation lines joined.
    instructions: Vec<String>,
    /// Index of the last `FROM`.
    final_stage: usize,
}

/// Reads `services/<component>/Dockerfile`.
fn read_dockerfile(component: &str) -> anyhow::Result<Image> {
    let path = repo_root().join(format!("services/{component}/Dockerfile"));
    let text = std::fs::read_to_string(&path)?;
    let mut image = Image::default();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(line);
                image.instructions.push(std::mem::take(&mut pending));
            }
        }
    }
    image.final_stage = image
        .instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .context("no FROM")?;
    Ok(image)
}

/// The instruction of the final stage starting with `word`.
fn final_instruction<'a>(image: &'a Image, word: &str) -> Option<&'a str> {
    image.instructions[image.final_stage..]
        .iter()
        .find(|i| i.starts_with(word))
        .map(String::as_str)
}

/// hadolint (deploy/hadolint.yaml) passes on every service Dockerfile and
/// the CLI's, and fails on one it should fail on.
#[test]
fn dockerfiles_pass_hadolint() -> anyhow::Result<()> {
    let config = repo_root().join("deploy/hadolint.yaml");
    let lint = |path: &Path| -> anyhow::Result<Output> {
        run(kit_tool("hadolint")?.arg("--config").arg(&config).arg(path))
    };
    let services = TIERS.map(|(component, _, _)| format!("services/{component}/Dockerfile"));
    for dockerfile in services
        .iter()
        .map(String::as_str)
        .chain(["cli/Dockerfile"])
    {
        let output = lint(&repo_root().join(dockerfile))?;
        assert!(
            output.status.success(),
            "{dockerfile}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, "FROM debian\nRUN cd /tmp && make\n")?;
    assert!(
        !lint(&bad)?.status.success(),
        "hadolint accepted a bad Dockerfile"
    );
    Ok(())
}

/// Each image builds its own binary with dependencies in a cached layer
/// (`cargo chef cook` before the sources are copied), runs it as the
/// numeric non-root user the manifests run as, carries a healthcheck, and
/// leaves build output and local tools out of its build context.
#[test]
fn dockerfiles_build_each_binary_non_root() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_, documents) = rendered(dir.path(), "production")?;
    for (component, binary, _) in TIERS {
        let image = read_dockerfile(component)?;
        let cook = image
            .instructions
            .iter()
            .position(|i| i.starts_with("RUN cargo chef cook"))
            .with_context(|| format!("{component}: no cargo chef cook"))?;
        let copy = image
            .instructions
            .iter()
            .rposition(|i| i == "COPY . .")
            .with_context(|| format!("{component}: no COPY . ."))?;
        let build = image
            .instructions
            .iter()
            .position(|i| i.starts_with("RUN cargo build --release"))
            .with_context(|| format!("{component}: no cargo build"))?;
        assert!(
            cook < copy && copy < build,
            "{component}: cook, copy, build out of order"
        );
        for step in [&image.instructions[cook], &image.instructions[build]] {
            assert!(
                step.contains(&format!("--bin {binary}")),
                "{component}: {step}"
            );
        }
        let entrypoint = final_instruction(&image, "ENTRYPOINT").context("an ENTRYPOINT")?;
        assert!(
            entrypoint.contains(&format!("/usr/local/bin/{binary}\"")),
            "{entrypoint}"
        );
        let user = final_instruction(&image, "USER ").context("a USER")?;
        let uid: u64 = user[5..]
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .with_context(|| format!("{component}: {user} is not numeric"))?;
        assert_ne!(uid, 0, "{component} runs as root");
        let deployment = named(&documents, "Deployment", component)?;
        assert_eq!(
            deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
            json!(uid),
            "{component}: the image's user is the pod's"
        );
        assert!(
            final_instruction(&image, "HEALTHCHECK ").is_some(),
            "{component}"
        );
        // BuildKit's per-Dockerfile ignore file keeps build output and local
        // tools out of the context that `COPY . .` sends.
        let ignore = std::fs::read_to_string(
            repo_root().join(format!("services/{component}/Dockerfile.dockerignore")),
        )?;
        for excluded in [
            "target",
            ".git",
            "tools/node_modules",
            "tools/python",
            ".dev",
        ] {
            assert!(
                ignore.lines().any(|line| line.trim() == excluded),
                "{component}: the context includes {excluded}"
            );
        }
    }
    Ok(())
}

/// The HEALTHCHECK of a service image: its own binary's `health`
/// subcommand, run with the image's (empty) environment, so on the
/// binary's default addresses.
fn image_healthcheck(component: &str, binary: &str) -> anyhow::Result<Healthcheck> {
    let image = read_dockerfile(component)?;
    let instruction = final_instruction(&image, "HEALTHCHECK ").context("a HEALTHCHECK")?;
    let json_form = &instruction[instruction.find("CMD [").context("exec-form CMD")? + 4..];
    let words: Vec<String> = serde_json::from_str(json_form)?;
    ensure!(
        words == health_command(binary),
        "{component}: the HEALTHCHECK is not {:?}: {words:?}",
        health_command(binary)
    );
    Ok(Healthcheck {
        service: component.to_owned(),
        binary: binary.to_owned(),
        env: BTreeMap::new(),
    })
}

/// The help parser reads both of clap's layouts (it is what every check
/// above relies on).
#[test]
fn help_parser_reads_both_layouts() {
    let compact = "About it.\n\nUsage: x [OPTIONS]\n\nOptions:\n      --registry-url <URL>  gRPC URL [env: IMGMESH_REGISTRY_URL=] [default: http://127.0.0.1:50051]\n      --json                Print JSON\n  -h, --help                Print help\n";
    let help = parse_help(compact);
    assert_eq!(help.about, "About it.");
    assert_eq!(help.options.len(), 3);
    assert_eq!(help.options[0].long, "--registry-url");
    assert_eq!(help.options[0].value, "<URL>");
    assert_eq!(help.options[0].env.as_deref(), Some("IMGMESH_REGISTRY_URL"));
    assert_eq!(
        help.options[0].default.as_deref(),
        Some("http://127.0.0.1:50051")
    );
    assert_eq!(help.options[0].help, "gRPC URL");
    assert_eq!(help.options[2].short.as_deref(), Some("-h"));
    let long = "About.\n\nUsage: x\n\nCommands:\n  rotate  Rotate it\n  help    Print this\n\nOptions:\n      --key <KEY>\n          The key. Prefer a file\n          \n          [env: IMGMESH_KEY]\n\n      --mode <MODE>\n          How\n          \n          Possible values:\n          - fast: Quickly\n          - slow\n          \n          [default: fast]\n";
    let help = parse_help(long);
    assert_eq!(help.subcommands, ["rotate"]);
    assert_eq!(help.options[0].env.as_deref(), Some("IMGMESH_KEY"));
    assert_eq!(help.options[0].help, "The key. Prefer a file");
    assert_eq!(help.options[1].default.as_deref(), Some("fast"));
    assert_eq!(
        help.options[1].help,
        "How Possible values: `fast`: Quickly; `slow`;"
    );
}

// === docs/configuration.md ===

/// Escapes a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The configuration page as the binaries' help describes them.
fn configuration_page() -> anyhow::Result<String> {
    let mut page = String::from(
        "# Configuration\n\n\
         Every flag of the four services and the `imgmesh` CLI, with the environment variable\n\
         that sets it and its default. A flag wins over its variable. Generated from the\n\
         binaries' `--help` (their clap definitions) by `integration-tests/tests/deploy_kit.rs`,\n\
         which fails when this page is out of date; regenerate it with\n\n\
         ```sh\n\
         cargo build -j2 --workspace --bins\n\
         IMGMESH_WRITE_DOCS=1 cargo nextest run -j2 -p imgmesh-integration-tests --test integration deploy_kit::configuration_page\n\
         ```\n\n\
         Ports, probes and what the Kubernetes kit sets are in [operations.md](operations.md).\n",
    );
    for binary in [
        "imgmesh-gateway",
        "imgmesh-renderer",
        "imgmesh-fetcher",
        "imgmesh-source-registry",
        "imgmesh",
    ] {
        for (words, help) in help_tree(binary)? {
            let title = std::iter::once(binary.to_owned())
                .chain(words.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ");
            let level = if words.is_empty() { "##" } else { "###" };
            page.push_str(&format!("\n{level} `{title}`\n\n{}\n", help.about));
            if !help.subcommands.is_empty() {
                let list: Vec<String> = help.subcommands.iter().map(|s| format!("`{s}`")).collect();
                page.push_str(&format!("\nSubcommands: {}.\n", list.join(", ")));
            }
            let options: Vec<&HelpOption> = help
                .options
                .iter()
                .filter(|o| o.long != "--help" && o.long != "--version")
                .collect();
            if options.is_empty() {
                continue;
            }
            page.push_str(
                "\n| flag | environment variable | default | meaning |\n|---|---|---|---|\n",
            );
            for option in options {
                let flag = match &option.value {
                    value if value.is_empty() => option.long.clone(),
                    value => format!("{} {value}", option.long),
                };
                let flag = match &option.short {
                    Some(short) => format!("`{short}`, `{flag}`"),
                    None => format!("`{flag}`"),
                };
                let env = option
                    .env
                    .as_deref()
                    .map(|e| format!("`{e}`"))
                    .unwrap_or_default();
                let default = option
                    .default
                    .as_deref()
                    .map(|d| format!("`{}`", cell(d)))
                    .unwrap_or_default();
                page.push_str(&format!(
                    "| {} | {env} | {default} | {} |\n",
                    cell(&flag),
                    cell(&option.help)
                ));
            }
        }
    }
    Ok(page)
}

/// docs/configuration.md lists what the binaries accept, as they say it;
/// with IMGMESH_WRITE_DOCS=1 it is rewritten instead.
#[test]
fn configuration_page_is_up_to_date() -> anyhow::Result<()> {
    let page = configuration_page()?;
    for (_, binary, _) in TIERS {
        let help = accepted(binary)?;
        for option in help.options.iter().filter(|o| o.env.is_some()) {
            let env = option.env.as_deref().unwrap_or_default();
            ensure!(
                page.contains(&format!("`{env}`")),
                "{binary} {env} is missing"
            );
        }
    }
    let path = repo_root().join(CONFIGURATION_PAGE);
    if std::env::var_os("IMGMESH_WRITE_DOCS").is_some() {
        std::fs::write(&path, &page)?;
        return Ok(());
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != page {
        bail!(
            "{CONFIGURATION_PAGE} is out of date with the binaries' --help; regenerate it with\n  \
             cargo build -j2 --workspace --bins && IMGMESH_WRITE_DOCS=1 cargo nextest run -j2 \
             -p imgmesh-integration-tests --test integration deploy_kit::configuration_page"
        );
    }
    Ok(())
}
