//! What imgmesh's tests run against, in one place: real servers started as
//! child processes on loopback ports, in-test gRPC peers, and log capture.
//!
//! A dev-dependency only: nothing here is built into a service.
//!
//! - [`process`]: [`ChildProcess`], a child killed on drop whose output goes
//!   to a log file and whose `imgmesh … listening on <addr>` announcements
//!   are kept, so tests learn the ports services picked themselves;
//! - [`ports`]: which ports a process listens on (read from `/proc`), and
//!   [`unused_port`] for the few tests that must name a port in advance;
//! - [`readiness`]: polling a condition until a deadline, never a fixed sleep;
//! - [`raw_client`]: exact bytes to a server, its answer read until it closes;
//! - [`tools`]: finding `s3s-fs`, `redis-server`, `psql`… on `PATH`;
//! - [`s3`]: [`S3Server`], a real `s3s-fs` (which checks SigV4) over a
//!   temporary directory; [`s3_policy`]: an S3 front answering like AWS does
//!   to credentials that lack one permission;
//! - [`redis`]: [`RedisServer`] and [`RedisCluster`] (three masters, three
//!   replicas);
//! - [`postgres`]: [`PostgresDatabase`], a fresh database on the tests'
//!   PostgreSQL server, dropped after the test;
//! - [`grpc_peer`]: [`GrpcPeer`], tonic routes served on `127.0.0.1:0` until
//!   dropped;
//! - [`log_capture`]: every log line of a test process, readable back;
//!   [`trace_context`] (feature `trace-context`): a subscriber whose spans
//!   carry W3C trace context.
//!
//! Every launcher picks its port safely — the server binds port 0 and the
//! launcher learns the port from its announcement or from `/proc`, or, for a
//! server that cannot bind port 0 (Redis), the launcher checks the listener
//! on the chosen port is its own child's and tries another port if not —
//! polls readiness with a deadline, and stops its process and removes its
//! temporary directory when dropped. The S3 and Redis launchers panic when
//! their server cannot start, saying what is missing (a test cannot go on
//! without its server); [`ChildProcess`] and [`PostgresDatabase`] return
//! errors, for harnesses that report them.

#![warn(missing_docs)]

pub mod grpc_peer;
pub mod log_capture;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod raw_client;
pub mod readiness;
pub mod redis;
pub mod s3;
pub mod s3_policy;
pub mod tools;
#[cfg(feature = "trace-context")]
pub mod trace_context;

pub use crate::grpc_peer::GrpcPeer;
pub use crate::ports::unused_port;
pub use crate::postgres::PostgresDatabase;
pub use crate::process::ChildProcess;
pub use crate::redis::{RedisCluster, RedisServer};
pub use crate::s3::S3Server;
pub use crate::tools::find_tool;
