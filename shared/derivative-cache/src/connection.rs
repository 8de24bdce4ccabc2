//! One Redis server or a Redis Cluster, behind one connection type.
//!
//! `--redis-url` names one server (`redis://host:6379`) or, as a
//! comma-separated list, the seed nodes of a Redis Cluster
//! (`redis://a:7000,redis://b:7001`); the cluster's own map of slots is
//! read from them. Both connect lazily and reconnect in the background, so
//! a Redis that is down at startup only means misses.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection to one server or to a cluster.
#[derive(Clone)]
pub(crate) enum RedisConnection {
    /// One server, one multiplexed connection.
    Server(ConnectionManager),
    /// A cluster: one multiplexed connection per node, made on first use.
    Cluster(Arc<LazyCluster>),
}

/// A cluster connection made by the first operation that needs it.
pub(crate) struct LazyCluster {
    client: ClusterClient,
    connection: tokio::sync::OnceCell<ClusterConnection>,
}

/// The URLs in `urls`: one server's, or a cluster's seed nodes
/// (comma-separated).
pub(crate) fn seeds(urls: &str) -> Vec<&str> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect()
}

// === impl RedisConnection ===

impl RedisConnection {
    /// The connection for `urls` (one URL, or a comma-separated list of
    /// cluster seed nodes), without connecting.
    pub(crate) fn lazy(
        urls: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<RedisConnection, redis::RedisError> {
        let seeds = seeds(urls);
        if let [url] = seeds.as_slice() {
            let client = redis::Client::open(*url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(1);
            return Ok(RedisConnection::Server(
                ConnectionManager::new_lazy_with_config(client, config)?,
            ));
        }
        if seeds.is_empty() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no Redis URL given",
            )));
        }
        // Retries follow MOVED/ASK answers and a failover; each operation
        // is still bounded by the cache's own timeout.
        let client = ClusterClient::builder(seeds)
            .connection_timeout(connect_timeout)
            .response_timeout(response_timeout)
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()?;
        Ok(RedisConnection::Cluster(Arc::new(LazyCluster {
            client,
            connection: tokio::sync::OnceCell::new(),
        })))
    }

    /// Whether keys of different hash tags must go in different requests.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, RedisConnection::Cluster(_))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Server(connection) => connection.req_packed_command(cmd),
            RedisConnection::Cluster(cluster) => {
                Box::pin(async move { cluster.connection().await?.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Server(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            RedisConnection::Cluster(cluster) => Box::pin(async move {
                cluster
                    .connection()
                    .await?
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Server(connection) => connection.get_db(),
            RedisConnection::Cluster(_) => 0,
        }
    }
}

// === impl LazyCluster ===

impl LazyCluster {
    /// The cluster connection, made now if no operation made it yet. The
    /// attempt runs in its own task, so an operation that gives up (its
    /// timeout is short) does not cancel it for the next one.
    async fn connection(self: &Arc<Self>) -> redis::RedisResult<ClusterConnection> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let cluster = self.clone();
        tokio::spawn(async move {
            cluster
                .connection
                .get_or_try_init(|| cluster.client.get_async_connection())
                .await
                .cloned()
        })
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "the cluster connection task ended",
            )))
        })
    }
}
