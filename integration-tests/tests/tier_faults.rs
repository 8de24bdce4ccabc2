//! The tiers behind the gateway killed (SIGKILL) and frozen (SIGSTOP) in
//! turn, and the registry's PostgreSQL database made to refuse connections
//! or to hang, while a bounded concurrent load runs through one gateway,
//! one replica per tier so the fault is felt.
//!
//! The load mixes derivatives already in Redis (hits, which the gateway
//! answers itself) with cold renders (misses). Every answer is checked on
//! its own: a hit is a 200 from Redis whatever tier is down; a miss is a
//! 200, or a 503/504 with `Retry-After` while its tier is down — never a
//! 500, and never later than the gateway's render deadline allows. With the
//! registry down, the gateway serves the Source's last answer (its stale
//! window) and the fetcher its S3 client, so everything stays 200. After
//! the tier is started again on its port (or thawed with SIGCONT) the mesh
//! recovers on its own: the same gateway renders misses again, with no
//! restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imgmesh_integration_tests::fixtures::{self, Format};
use imgmesh_integration_tests::{
    BASE_DOMAIN, ChildProcess, Mesh, MeshOptions, S3_SECRET_KEY, find_tool,
};

/// The gateway's render deadline (`--render-timeout-ms`): short, so a
/// frozen tier costs the test seconds, long enough for a cold render of a
/// small original in a debug build on two loaded cores.
const RENDER_TIMEOUT: Duration = Duration::from_millis(2500);

/// The gateway waits this long past a deadline it sent before giving up
/// itself (`DEADLINE_GRACE` in the gateway's `upstream`).
const GATEWAY_DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// How long the gateway waits for a registry lookup before serving the
/// host's last answer (`STALE_LOOKUP_WAIT` in its `image_handler`).
const STALE_LOOKUP_WAIT: Duration = Duration::from_millis(500);

/// The gateway's deadline for a registry lookup with no stale answer to
/// fall back on (`RESOLVE_TIMEOUT` in its `upstream`).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Scheduling slack for debug builds on two cores shared with the rest of
/// the mesh and the load.
const SLACK: Duration = Duration::from_secs(2);

/// Longest any answer may take, fault or not: a registry lookup that gives
/// way to the stale answer, then a render that runs into the gateway's
/// deadline and its grace, plus slack.
const ANSWER_BOUND: Duration = Duration::from_millis(
    (STALE_LOOKUP_WAIT.as_millis()
        + RENDER_TIMEOUT.as_millis()
        + GATEWAY_DEADLINE_GRACE.as_millis()
        + SLACK.as_millis()) as u64,
);

/// Longest answer for a host the gateway never saw while the registry is
/// down: the lookup's deadline and the gateway's grace, plus slack.
const UNSEEN_HOST_BOUND: Duration = Duration::from_millis(
    (RESOLVE_TIMEOUT.as_millis() + GATEWAY_DEADLINE_GRACE.as_millis() + SLACK.as_millis()) as u64,
);

/// Requests in flight at once: fewer than the renderer admits (two
/// workers and a queue of four on two cores), so nothing is shed for
/// overload and every refusal comes from the fault.
const CONCURRENCY: usize = 4;

/// Requests in each steady phase (before the fault and after recovery).
const STEADY_REQUESTS: usize = 24;

/// Most requests sent while a tier is down (the load also stops when the
/// fault is lifted).
const MAX_FAULT_REQUESTS: usize = 1500;

/// Pause between one load worker's requests, so that fast refusals do not
/// spend the whole load before the tier comes back.
const PACE: Duration = Duration::from_millis(20);

/// How long the mesh may take to render again after the tier is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

/// Derivatives warmed into Redis before the load.
const HIT_WIDTHS: [usize; 4] = [40, 48, 56, 64];

/// The tier a test disturbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Renderer,
    Fetcher,
    Registry,
}

/// What is done to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `kill -9`, then a new process on the same port.
    Kill,
    /// `kill -STOP`, then `kill -CONT`.
    Freeze,
    /// The registry's PostgreSQL database refuses new connections and
    /// ends the ones it has, then accepts them again (registry only).
    DatabaseRefuses,
    /// The registry's PostgreSQL database hangs: another session holds an
    /// exclusive lock on the Sources table, so every query waits, until
    /// that session is ended (registry only).
    DatabaseHangs,
}

// === impl Fault ===

impl Fault {
    /// Whether the fault is done to the registry's database (the mesh then
    /// keeps its Sources on PostgreSQL).
    fn needs_postgres(self) -> bool {
        matches!(self, Fault::DatabaseRefuses | Fault::DatabaseHangs)
    }
}

/// A request of the load: a derivative in Redis, or one never rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hit,
    Miss,
}

/// One request of the load and what the gateway answered.
#[derive(Debug)]
struct Answer {
    kind: Kind,
    /// The width asked for.
    width: usize,
    path: String,
    /// When it was sent.
    sent: Instant,
    /// How long the answer took.
    took: Duration,
    /// The status, or `None` when no answer came within [`ANSWER_BOUND`]
    /// (or the connection failed).
    status: Option<u16>,
    /// Its `Retry-After`.
    retry_after: Option<String>,
    /// Its `X-Imgmesh-Cache` (`hit` when the gateway read Redis).
    cache: Option<String>,
    /// For a 200, empty when the image is the one asked for, else what is
    /// wrong with it; otherwise the error text.
    body: String,
}

// === impl Answer ===

impl Answer {
    /// One line saying what was asked and answered, for failure messages.
    fn describe(&self) -> String {
        format!(
            "{:?} {} → {:?} in {:?} (retry-after {:?}, cache {:?}): {}",
            self.kind, self.path, self.status, self.took, self.retry_after, self.cache, self.body
        )
    }

    /// A refusal a client can act on: 503 or 504 with `Retry-After`.
    fn is_retry_later(&self) -> bool {
        matches!(self.status, Some(503 | 504)) && self.retry_after.is_some()
    }
}

/// The load: hits cycle over [`HIT_WIDTHS`], each miss asks a width never
/// asked before; every other request is a miss.
#[derive(Debug, Clone)]
struct Load {
    gateway: SocketAddr,
    host: String,
    sent: Arc<AtomicUsize>,
}

// === impl Load ===

impl Load {
    /// Sends the next request of the mix and waits at most
    /// [`ANSWER_BOUND`] for its answer.
    async fn next(&self) -> Answer {
        self.next_within(ANSWER_BOUND).await
    }

    /// Sends the next request of the mix and waits at most `bound` for its
    /// answer.
    async fn next_within(&self, bound: Duration) -> Answer {
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        let (kind, width, path) = if n.is_multiple_of(2) {
            let width = HIT_WIDTHS[(n / 2) % HIT_WIDTHS.len()];
            (Kind::Hit, width, hit_path(width))
        } else {
            // A derivative never asked before: widths 100.. (multiples of
            // four, so the height is exact) never meet a hit width, and the
            // quality tells apart rounds of the widths.
            let width = 100 + 4 * (n % 120);
            (
                Kind::Miss,
                width,
                format!("/photo.jpg?w={width}&q={}", 30 + n / 120),
            )
        };
        self.ask(kind, width, path, bound).await
    }

    /// Asks `path`, a `kind` request for `width`, waiting at most `bound`.
    async fn ask(&self, kind: Kind, width: usize, path: String, bound: Duration) -> Answer {
        let sent = Instant::now();
        let answer = tokio::time::timeout(
            bound,
            imgmesh_integration_tests::get(self.gateway, &self.host, &path, &[]),
        )
        .await;
        let took = sent.elapsed();
        match answer {
            Ok(Ok(response)) => Answer {
                kind,
                width,
                sent,
                took,
                status: Some(response.status),
                retry_after: response.header("retry-after").map(str::to_owned),
                cache: response.header("x-imgmesh-cache").map(str::to_owned),
                body: if response.status == 200 {
                    check_image(&response.body, width)
                } else {
                    response.text()
                },
                path,
            },
            Ok(Err(error)) => Answer {
                kind,
                width,
                path,
                sent,
                took,
                status: None,
                retry_after: None,
                cache: None,
                body: format!("request failed: {error:#}"),
            },
            Err(_elapsed) => Answer {
                kind,
                width,
                path,
                sent,
                took,
                status: None,
                retry_after: None,
                cache: None,
                body: format!("no answer within {bound:?}"),
            },
        }
    }

    /// Sends `count` requests, [`CONCURRENCY`] at a time.
    async fn run(&self, count: usize) -> Vec<Answer> {
        self.run_until(count, Arc::new(AtomicBool::new(false)))
            .await
            .expect("the load panicked")
    }

    /// Sends up to `count` requests, [`CONCURRENCY`] at a time, until
    /// `stop` is set; the requests in flight then finish.
    fn run_until(
        &self,
        count: usize,
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<Vec<Answer>> {
        let left = Arc::new(AtomicUsize::new(count));
        let workers: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (load, left, stop) = (self.clone(), left.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::Relaxed)
                        && left
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                n.checked_sub(1)
                            })
                            .is_ok()
                    {
                        answers.push(load.next().await);
                        tokio::time::sleep(PACE).await;
                    }
                    answers
                })
            })
            .collect();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for worker in workers {
                answers.extend(worker.await.expect("a load worker panicked"));
            }
            answers
        })
    }
}

/// The warning and error lines of a log.
fn warnings(log: &str) -> String {
    log.lines()
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The path of a hit of `width`.
fn hit_path(width: usize) -> String {
    format!("/photo.jpg?w={width}")
}

/// An empty string when `bytes` is the JPEG asked for at `width` (the
/// original is 640 × 480), else what is wrong with it.
fn check_image(bytes: &[u8], width: usize) -> String {
    let width = i32::try_from(width).expect("small width");
    match fixtures::expect_image(bytes, Format::Jpeg, width, width * 3 / 4) {
        Ok(()) => String::new(),
        Err(error) => format!("wrong image: {error:#}"),
    }
}

/// The mesh with one replica per tier (the registry on PostgreSQL with
/// `postgres`), a Source `tiers` serving `photo.jpg`, and a gateway with a
/// short render deadline that reads Redis; the hit widths are in Redis.
async fn mesh_under_test(postgres: bool) -> (Mesh, ChildProcess, Load) {
    let mesh = Mesh::start(MeshOptions {
        postgres,
        ..MeshOptions::default()
    })
    .await
    .expect("mesh starts");
    mesh.put_object("photo.jpg", &fixtures::jpeg(640, 480).unwrap())
        .unwrap();
    mesh.create_source("tiers", S3_SECRET_KEY, &[])
        .await
        .expect("source is created");
    let render_timeout = format!("--render-timeout-ms={}", RENDER_TIMEOUT.as_millis());
    let redis = format!("--redis-url={}", mesh.redis_url);
    let (gateway, http, _) = mesh
        .spawn_gateway(
            &mesh.renderer_url,
            &[
                &render_timeout,
                &redis,
                // As the mesh's own gateway: debug builds on loaded cores.
                "--redis-timeout-ms=250",
                "--source-cache-ttl-ms=200",
            ],
        )
        .await
        .expect("gateway starts");
    let load = Load {
        gateway: http,
        host: format!("tiers.{BASE_DOMAIN}"),
        sent: Arc::new(AtomicUsize::new(0)),
    };
    for width in HIT_WIDTHS {
        let path = hit_path(width);
        let deadline = Instant::now() + RECOVERY_BOUND;
        loop {
            let response = imgmesh_integration_tests::get(http, &load.host, &path, &[])
                .await
                .unwrap();
            assert_eq!(response.status, 200, "{path}: {}", response.text());
            // Renderers write Redis after answering: ask until it is there.
            if response.header("x-imgmesh-cache") == Some("hit") {
                break;
            }
            assert!(Instant::now() < deadline, "{path} never became a hit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (mesh, gateway, load)
}

/// The gRPC listen address of `tier` in `mesh` (where a new process must
/// listen for its callers to find it again).
fn listen_address(mesh: &Mesh, tier: Tier) -> String {
    let url = match tier {
        Tier::Renderer => &mesh.renderer_url,
        Tier::Fetcher => &mesh.fetcher_url,
        Tier::Registry => &mesh.registry_url,
    };
    url.trim_start_matches("http://").to_owned()
}

/// The mesh's process for `tier`.
fn process(mesh: &mut Mesh, tier: Tier) -> &mut ChildProcess {
    match tier {
        Tier::Renderer => &mut mesh.renderer,
        Tier::Fetcher => &mut mesh.fetcher,
        Tier::Registry => &mut mesh.registry,
    }
}

/// Starts `tier` again where the killed process listened, retrying while
/// its ports are still being given up.
async fn restart(mesh: &Mesh, tier: Tier) -> ChildProcess {
    let listen = listen_address(mesh, tier);
    // The registry's credentials listener comes back on its port too: the
    // fetcher calls it there.
    let registry_extra = [format!(
        "--credentials-listen={}",
        mesh.registry_credentials_url.trim_start_matches("http://")
    )];
    let deadline = Instant::now() + RECOVERY_BOUND;
    loop {
        let started = match tier {
            Tier::Renderer => mesh.spawn_renderer_with(&listen, &mesh.fetcher_url).await,
            Tier::Fetcher => {
                mesh.spawn_fetcher_on(&listen, &mesh.registry_credentials_url)
                    .await
            }
            Tier::Registry => mesh.spawn_registry_on(&listen, &registry_extra).await,
        };
        match started {
            Ok((process, _, _)) => return process,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "{tier:?} could not start again on {listen}: {error:#}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The name of the application whose session locks the registry's tables
/// for [`Fault::DatabaseHangs`].
const LOCK_HOLDER: &str = "imgmesh-tier-faults-lock";

/// Does `fault` to `tier`; returns what holds the fault in place, if
/// anything must be ended to lift it.
async fn inject(mesh: &mut Mesh, tier: Tier, fault: Fault) -> Option<ChildProcess> {
    match fault {
        Fault::Kill => process(mesh, tier).kill(),
        Fault::Freeze => process(mesh, tier).signal("STOP").unwrap(),
        Fault::DatabaseRefuses => {
            let database = mesh.postgres.as_ref().expect("a PostgreSQL mesh");
            database
                .admin_sql(&format!(
                    "ALTER DATABASE {} ALLOW_CONNECTIONS false",
                    database.name
                ))
                .unwrap();
            end_sessions(mesh, "");
        }
        Fault::DatabaseHangs => {
            let database = mesh.postgres.as_ref().expect("a PostgreSQL mesh");
            let holder = ChildProcess::spawn(
                "lock-holder",
                std::process::Command::new(find_tool("psql").unwrap())
                    .env("PGAPPNAME", LOCK_HOLDER)
                    .arg(&database.url)
                    .args(["-c", "BEGIN"])
                    .args(["-c", "LOCK TABLE sources IN ACCESS EXCLUSIVE MODE"])
                    .args(["-c", "SELECT pg_sleep(120)"]),
                &mesh.dir.path().join("logs"),
            )
            .unwrap();
            // Poll until the lock is held: the query fails until it is.
            let lock_taken = format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d \
                 ON d.oid = l.database WHERE d.datname = '{}' AND l.locktype = 'relation' \
                 AND l.mode = 'AccessExclusiveLock' AND l.granted) THEN \
                 RAISE EXCEPTION 'not locked yet'; END IF; END $$",
                database.name
            );
            let deadline = Instant::now() + RECOVERY_BOUND;
            while database.admin_sql(&lock_taken).is_err() {
                assert!(Instant::now() < deadline, "the lock was never taken");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Some(holder);
        }
    }
    None
}

/// Lifts `fault` from `tier` (`held` is what [`inject`] returned); returns
/// the process started again in place of a killed one.
async fn lift(
    mesh: &mut Mesh,
    tier: Tier,
    fault: Fault,
    held: Option<ChildProcess>,
) -> Option<ChildProcess> {
    match fault {
        Fault::Kill => return Some(restart(mesh, tier).await),
        Fault::Freeze => process(mesh, tier).signal("CONT").unwrap(),
        Fault::DatabaseRefuses => {
            let database = mesh.postgres.as_ref().expect("a PostgreSQL mesh");
            database
                .admin_sql(&format!(
                    "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                    database.name
                ))
                .unwrap();
        }
        Fault::DatabaseHangs => {
            // Ending its session (not just its client) releases the lock.
            end_sessions(mesh, LOCK_HOLDER);
            drop(held);
        }
    }
    None
}

/// Ends the sessions on the mesh's database, those of `application` only
/// when it is not empty.
fn end_sessions(mesh: &Mesh, application: &str) {
    let database = mesh.postgres.as_ref().expect("a PostgreSQL mesh");
    let only = if application.is_empty() {
        String::new()
    } else {
        format!(" AND application_name = '{application}'")
    };
    database
        .admin_sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'{only}",
            database.name
        ))
        .unwrap();
}

/// Every answer of a phase with no fault: 200 with the right image.
fn assert_all_served(phase: &str, answers: &[Answer], mesh: &Mesh) {
    let failed: Vec<String> = answers
        .iter()
        .filter(|answer| answer.status != Some(200) || !answer.body.is_empty())
        .map(Answer::describe)
        .collect();
    assert!(
        failed.is_empty(),
        "{phase}: {} of {} failed:\n{}\n{}",
        failed.len(),
        answers.len(),
        failed.join("\n"),
        mesh.log_tail()
    );
}

/// Runs the load, disturbs `tier` with `fault` in the middle of it, checks
/// every answer given meanwhile, lifts the fault and checks the mesh
/// recovers under the same gateway.
async fn tier_fault_under_load(tier: Tier, fault: Fault) {
    let (mut mesh, gateway, load) = mesh_under_test(fault.needs_postgres()).await;
    let before = load.run(STEADY_REQUESTS).await;
    assert_all_served("before the fault", &before, &mesh);

    let stop = Arc::new(AtomicBool::new(false));
    let running = load.run_until(MAX_FAULT_REQUESTS, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let faulted = Instant::now();
    let held = inject(&mut mesh, tier, fault).await;
    // A host the gateway never saw has no stale answer: with the registry
    // down it is refused for now, within the lookup deadline.
    let unseen = (tier == Tier::Registry).then(|| {
        let load = Load {
            host: format!("unseen.{BASE_DOMAIN}"),
            ..load.clone()
        };
        tokio::spawn(async move { load.next_within(UNSEEN_HOST_BOUND).await })
    });
    // Long enough for requests sent after the fault to run into the
    // render deadline and be answered.
    tokio::time::sleep(RENDER_TIMEOUT * 2).await;
    if let Some(unseen) = unseen {
        let answer = unseen.await.unwrap();
        eprintln!(
            "{tier:?} {fault:?}: a host never seen: {}",
            answer.describe()
        );
        assert!(
            answer.status == Some(503)
                && answer.retry_after.is_some()
                && answer.took < UNSEEN_HOST_BOUND,
            "a host never seen, with the registry down: {}",
            answer.describe()
        );
    }
    let restarted = lift(&mut mesh, tier, fault, held).await;
    let lifted = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let during = running.await.unwrap();

    let mut wrong = Vec::new();
    let mut refused_misses = 0;
    for answer in &during {
        let in_fault = answer.sent >= faulted && answer.sent + answer.took <= lifted;
        let ok = match (answer.kind, answer.status) {
            // Hits never need the disturbed tier: the gateway reads Redis.
            (Kind::Hit, Some(200)) => {
                answer.body.is_empty() && answer.cache.as_deref() == Some("hit")
            }
            (Kind::Hit, _) => false,
            (Kind::Miss, Some(200)) => answer.body.is_empty(),
            // The registry down: known Sources keep serving, misses too.
            (Kind::Miss, _) if tier == Tier::Registry => false,
            (Kind::Miss, _) => {
                refused_misses += usize::from(in_fault && answer.is_retry_later());
                answer.is_retry_later()
            }
        };
        // A dead tier refuses at once: nothing waits for the deadline.
        let prompt = fault != Fault::Kill || answer.took < RENDER_TIMEOUT;
        if !ok || !prompt {
            wrong.push(answer.describe());
        }
    }
    let slowest = during.iter().map(|answer| answer.took).max();
    let mut refusals: Vec<String> = during
        .iter()
        .filter(|answer| answer.status != Some(200))
        .map(|answer| format!("{:?} {}", answer.status, answer.body))
        .collect();
    refusals.sort_unstable();
    refusals.dedup();
    eprintln!(
        "{tier:?} {fault:?}: {} requests while it was down, {refused_misses} misses refused ({}), slowest answer {slowest:?}",
        during.len(),
        refusals.join("; ")
    );
    assert!(
        wrong.is_empty(),
        "{tier:?} {fault:?}: {} of {} answers were wrong:\n{}\n{}\ngateway:\n{}",
        wrong.len(),
        during.len(),
        wrong.join("\n"),
        mesh.log_tail(),
        warnings(&gateway.log())
    );
    if tier != Tier::Registry {
        assert!(
            refused_misses > 0,
            "{tier:?} {fault:?}: no miss was refused while it was down"
        );
    }

    // Recovery on its own: a new miss renders within the bound, then a
    // whole phase of the load is served.
    let deadline = lifted + RECOVERY_BOUND;
    loop {
        let answer = load.next().await;
        if answer.kind == Kind::Miss && answer.status == Some(200) {
            assert!(answer.body.is_empty(), "{}", answer.describe());
            eprintln!(
                "{tier:?} {fault:?}: a miss rendered again {:?} after the fault was lifted",
                lifted.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{tier:?} {fault:?}: no miss rendered within {RECOVERY_BOUND:?} of the fault being lifted; last: {}\n{}",
            answer.describe(),
            mesh.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = load.run(STEADY_REQUESTS).await;
    assert_all_served("after recovery", &after, &mesh);
    // No refusal was remembered (by the gateway or in Redis): asked again,
    // what was refused while the tier was down renders.
    let mut again = Vec::new();
    for refused in during
        .iter()
        .filter(|answer| answer.status != Some(200))
        .take(8)
    {
        again.push(
            load.ask(
                refused.kind,
                refused.width,
                refused.path.clone(),
                ANSWER_BOUND,
            )
            .await,
        );
    }
    assert_all_served("refused requests asked again", &again, &mesh);
    if tier == Tier::Registry {
        // The registry is really asked again, by the gateway (a host it
        // never saw) and the fetcher (credentials it never held).
        mesh.create_source("late", S3_SECRET_KEY, &[])
            .await
            .expect("a source is created after the registry is back");
        let late = Load {
            host: format!("late.{BASE_DOMAIN}"),
            ..load.clone()
        };
        let answer = late.next().await;
        assert!(
            answer.status == Some(200) && answer.body.is_empty(),
            "a new source after the registry is back: {}",
            answer.describe()
        );
    }
    drop(restarted);
}

/// kill -9 of the only renderer under load: hits stay 200 from Redis,
/// misses are 503/504 with `Retry-After` within the render deadline (never
/// a 500), and a renderer started again on its port renders misses for the
/// same gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renderer_killed_under_load() {
    tier_fault_under_load(Tier::Renderer, Fault::Kill).await;
}

/// SIGSTOP of the only renderer under load: hits stay 200 from Redis,
/// misses are 503/504 with `Retry-After` once the render deadline passes
/// (never a 500, never a hang), and after SIGCONT misses render again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renderer_frozen_under_load() {
    tier_fault_under_load(Tier::Renderer, Fault::Freeze).await;
}

/// kill -9 of the only fetcher under load: hits stay 200, misses are
/// 503/504 with `Retry-After` (never a 500), and a fetcher started again on
/// its port serves the same renderer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetcher_killed_under_load() {
    tier_fault_under_load(Tier::Fetcher, Fault::Kill).await;
}

/// SIGSTOP of the only fetcher under load: hits stay 200, misses are
/// 503/504 with `Retry-After` within the render deadline (never a 500,
/// never a hang), and after SIGCONT misses render again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetcher_frozen_under_load() {
    tier_fault_under_load(Tier::Fetcher, Fault::Freeze).await;
}

/// kill -9 of the only registry under load: the known Source keeps
/// serving hits and misses alike (the gateway's stale window, the
/// fetcher's S3 client), and a registry started again on its port is used
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_killed_under_load() {
    tier_fault_under_load(Tier::Registry, Fault::Kill).await;
}

/// SIGSTOP of the only registry under load: the known Source keeps
/// serving hits and misses, each delayed at most by the gateway's short
/// wait for a lookup, and after SIGCONT the registry is used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_frozen_under_load() {
    tier_fault_under_load(Tier::Registry, Fault::Freeze).await;
}

/// The registry's PostgreSQL database refusing connections under load
/// (its pooled ones ended): the known Source keeps serving hits and misses,
/// a host never seen is a 503 with `Retry-After` (not a 500), and once the
/// database accepts connections again a new Source serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_database_refusing_under_load() {
    tier_fault_under_load(Tier::Registry, Fault::DatabaseRefuses).await;
}

/// The registry's PostgreSQL database hanging under load (a session holds
/// an exclusive lock on the Sources table): the known Source keeps serving
/// hits and renders, each delayed at most by the gateway's short wait for
/// a lookup; a host never seen is a 503 with `Retry-After` at the lookup
/// deadline; once the lock is gone a new Source serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_database_hanging_under_load() {
    tier_fault_under_load(Tier::Registry, Fault::DatabaseHangs).await;
}
