//! Coalescing of concurrent identical work within one process: N callers
//! asking for one key while its work runs share that one run.
//!
//! The work runs on its own task, so work under way finishes (and stores
//! what it produced) even when every caller has gone away. But it is told
//! when the last caller leaves ([`Abandoned`]), so work that has not
//! started yet — a render still waiting for a worker — is not started for
//! nobody. The key is free again as soon as the run ends or is abandoned,
//! so later callers start afresh.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::error::RenderError;

type Outcome<T> = Result<T, RenderError>;
type Run<T> = Shared<BoxFuture<'static, Outcome<T>>>;
/// Runs in flight by key.
type Runs<T> = Mutex<HashMap<String, Flight<T>>>;

/// Runs of work in flight, by key.
#[derive(Debug)]
pub(crate) struct SingleFlight<T> {
    runs: Arc<Runs<T>>,
    next_id: AtomicU64,
}

/// One run in flight.
#[derive(Debug)]
struct Flight<T> {
    /// Lets the run (and its callers) retire only their own entry.
    id: u64,
    run: Run<T>,
    /// Callers awaiting the run now.
    callers: usize,
    /// Set when the last caller leaves.
    abandoned: watch::Sender<bool>,
}

/// Tells a run whether every caller has gone: work that has not started
/// yet (waiting for a worker) should then not start. Work under way may
/// finish; nobody awaits its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Abandoned(watch::Receiver<bool>);

/// One caller's presence in a run; leaving (dropped, e.g. when the gRPC
/// call is cancelled) may abandon it.
struct Caller<'a, T> {
    runs: &'a Runs<T>,
    key: &'a str,
    id: u64,
}

// === impl SingleFlight ===

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// No work in flight.
    pub(crate) fn new() -> SingleFlight<T> {
        SingleFlight {
            runs: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(0),
        }
    }

    /// The outcome of the run for `key`: the one in flight, or a new one of
    /// `work(abandoned)`; and whether this call started it. `abandoned`
    /// fires once every caller of the run has gone; the key is then free
    /// for a new run at once.
    pub(crate) async fn run<F, Fut>(&self, key: &str, work: F) -> (Outcome<T>, bool)
    where
        F: FnOnce(Abandoned) -> Fut,
        Fut: Future<Output = Outcome<T>> + Send + 'static,
    {
        let (run, id, started) = {
            let mut runs = imgmesh_runtime::lock(&self.runs);
            match runs.get_mut(key) {
                Some(flight) => {
                    flight.callers += 1;
                    (flight.run.clone(), flight.id, false)
                }
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let (abandoned, watch) = watch::channel(false);
                    let work = work(Abandoned(watch));
                    let finished = Arc::clone(&self.runs);
                    let owned_key = key.to_owned();
                    // The lock is held until the run is registered, so the
                    // task cannot unregister it before that.
                    // The run continues the starting caller's trace.
                    let task = tokio::spawn(
                        async move {
                            let outcome = work.await;
                            let mut runs = imgmesh_runtime::lock(&finished);
                            if runs.get(&owned_key).is_some_and(|flight| flight.id == id) {
                                runs.remove(&owned_key);
                            }
                            outcome
                        }
                        .in_current_span(),
                    );
                    let run = async move {
                        task.await.unwrap_or(Err(RenderError::Internal {
                            context: "running a shared render",
                        }))
                    }
                    .boxed()
                    .shared();
                    let flight = Flight {
                        id,
                        run: run.clone(),
                        callers: 1,
                        abandoned,
                    };
                    runs.insert(key.to_owned(), flight);
                    (run, id, true)
                }
            }
        };
        let _caller = Caller {
            runs: &self.runs,
            key,
            id,
        };
        (run.await, started)
    }
}

// === impl Caller ===

impl<T> Drop for Caller<'_, T> {
    fn drop(&mut self) {
        let mut runs = imgmesh_runtime::lock(self.runs);
        let Some(flight) = runs.get_mut(self.key).filter(|flight| flight.id == self.id) else {
            // The run ended (and retired itself) first.
            return;
        };
        flight.callers -= 1;
        if flight.callers == 0
            && let Some(flight) = runs.remove(self.key)
        {
            // Later callers start afresh rather than join work nobody waits for.
            flight.abandoned.send_replace(true);
        }
    }
}

// === impl Abandoned ===

impl Abandoned {
    /// A signal that never fires, for work run outside a [`SingleFlight`]
    /// (its caller awaits it directly, so dropping the caller drops it).
    pub(crate) fn never() -> Abandoned {
        Abandoned(watch::channel(false).1)
    }

    /// Whether every caller has gone.
    pub(crate) fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once every caller has gone; never, if the run ends first.
    pub(crate) async fn wait(&self) {
        let mut watch = self.0.clone();
        if watch.wait_for(|gone| *gone).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Default for SingleFlight<T> {
    fn default() -> SingleFlight<T> {
        SingleFlight::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    /// Concurrent callers of one key share one run; another key runs on its
    /// own; after the run ends the key runs again.
    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights = Arc::new(SingleFlight::<usize>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let call = |key: &'static str| {
            let (flights, runs) = (flights.clone(), runs.clone());
            async move {
                flights
                    .run(key, |_| async move {
                        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(n)
                    })
                    .await
            }
        };
        let results = futures::future::join_all((0..50).map(|_| call("a"))).await;
        assert_eq!(results.iter().filter(|(_, started)| *started).count(), 1);
        assert!(
            results
                .iter()
                .all(|(outcome, _)| outcome.as_ref().unwrap() == &1)
        );
        assert_eq!(call("b").await.0.unwrap(), 2);
        assert_eq!(call("a").await.0.unwrap(), 3);
        assert!(flights.runs.lock().unwrap().is_empty());
    }

    /// A run whose callers all went away still finishes; errors are shared.
    #[tokio::test]
    async fn runs_outlive_their_callers() {
        let flights = SingleFlight::<()>::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let abandoned = flights.run("k", |_| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = done_tx.send(());
            Ok(())
        });
        let _ = tokio::time::timeout(Duration::from_millis(1), abandoned).await;
        done_rx.await.expect("the run finished without callers");

        let failing = |_| async { Err(RenderError::CorruptInput) };
        let (first, second) = tokio::join!(flights.run("e", failing), flights.run("e", failing));
        assert!(matches!(first.0, Err(RenderError::CorruptInput)));
        assert!(matches!(second.0, Err(RenderError::CorruptInput)));
    }

    /// The run learns when its last caller leaves (a caller still waiting
    /// keeps it wanted), and the key is then free for a fresh run.
    #[tokio::test]
    async fn a_run_is_abandoned_when_its_last_caller_leaves() {
        let flights = Arc::new(SingleFlight::<bool>::new());
        let (signal_tx, signal_rx) = tokio::sync::oneshot::channel();
        let first = flights.run("k", |abandoned| async move {
            let _ = signal_tx.send(abandoned.clone());
            abandoned.wait().await;
            Ok(true)
        });
        let mut first = Box::pin(first);
        assert!(
            tokio::time::timeout(Duration::from_millis(10), &mut first)
                .await
                .is_err()
        );
        let abandoned = signal_rx.await.unwrap();
        let second = flights.run("k", |_| async { Ok(false) });
        let mut second = Box::pin(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(10), &mut second)
                .await
                .is_err()
        );

        drop(first);
        assert!(!abandoned.is_set(), "a second caller still waits");
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), abandoned.wait())
            .await
            .expect("abandoned once no caller is left");
        assert!(flights.runs.lock().unwrap().is_empty());
        let (fresh, started) = flights.run("k", |_| async { Ok(false) }).await;
        assert!(started && !fresh.unwrap());
    }
}
