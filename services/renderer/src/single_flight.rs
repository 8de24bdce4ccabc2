//! Coalescing of concurrent identical work within one process: N callers
//! asking for one key while its work runs share that one run.
//!
//! The work runs on its own task, so it finishes (and stores what it
//! produced) even when every caller has gone away; the key is free again
//! as soon as it ends, so later callers start afresh.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use tracing::Instrument as _;

use crate::error::RenderError;

type Outcome<T> = Result<T, RenderError>;
type Run<T> = Shared<BoxFuture<'static, Outcome<T>>>;
/// Runs in flight by key, each with the id that lets it retire itself.
type Runs<T> = Mutex<HashMap<String, (u64, Run<T>)>>;

/// Runs of work in flight, by key.
#[derive(Debug)]
pub(crate) struct SingleFlight<T> {
    runs: Arc<Runs<T>>,
    next_id: AtomicU64,
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
    /// `work()`; and whether this call started it.
    pub(crate) async fn run<F, Fut>(&self, key: &str, work: F) -> (Outcome<T>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome<T>> + Send + 'static,
    {
        let (run, started) = {
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            match runs.get(key) {
                Some((_, run)) => (run.clone(), false),
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let work = work();
                    let finished = Arc::clone(&self.runs);
                    let owned_key = key.to_owned();
                    // The lock is held until the run is registered, so the
                    // task cannot unregister it before that.
                    // The run continues the starting caller's trace.
                    let task = tokio::spawn(
                        async move {
                            let outcome = work.await;
                            let mut runs = finished.lock().unwrap_or_else(|e| e.into_inner());
                            if runs
                                .get(&owned_key)
                                .is_some_and(|(run_id, _)| *run_id == id)
                            {
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
                    runs.insert(key.to_owned(), (id, run.clone()));
                    (run, true)
                }
            }
        };
        (run.await, started)
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
                    .run(key, || async move {
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
        let abandoned = flights.run("k", || async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = done_tx.send(());
            Ok(())
        });
        let _ = tokio::time::timeout(Duration::from_millis(1), abandoned).await;
        done_rx.await.expect("the run finished without callers");

        let failing = || async { Err(RenderError::CorruptInput) };
        let (first, second) = tokio::join!(flights.run("e", failing), flights.run("e", failing));
        assert!(matches!(first.0, Err(RenderError::CorruptInput)));
        assert!(matches!(second.0, Err(RenderError::CorruptInput)));
    }
}
