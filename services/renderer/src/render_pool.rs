//! The bounded pool libvips work runs on.
//!
//! A render is CPU-bound and blocking, so it runs under
//! `tokio::task::spawn_blocking`, never on the async workers. A semaphore
//! with one permit per worker bounds how many run at once: the permit is
//! taken before the blocking task is spawned (so waiting renders hold no
//! thread) and released when the render finishes, even if the caller has
//! gone away meanwhile.

use std::sync::Arc;

use imgmesh_proto::renderer::v1::RenderPlan;
use tokio::sync::Semaphore;

use crate::error::RenderError;
use crate::render::{Derivative, RenderLimits, RenderSources, render_image};

/// Runs renders on at most `workers` blocking threads at a time.
#[derive(Debug, Clone)]
pub struct RenderPool {
    permits: Arc<Semaphore>,
    workers: usize,
    limits: RenderLimits,
}

// === impl RenderPool ===

impl RenderPool {
    /// A pool of `workers` concurrent renders (at least one) under `limits`.
    pub fn new(workers: usize, limits: RenderLimits) -> RenderPool {
        let workers = workers.max(1);
        RenderPool {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            limits,
        }
    }

    /// How many renders may run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Renders `sources` with `plan`, waiting for a free worker first. The
    /// libvips spans are children of the caller's current span.
    pub async fn render(
        &self,
        sources: RenderSources,
        plan: RenderPlan,
    ) -> Result<Derivative, RenderError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_closed| RenderError::Internal {
                context: "waiting for a render worker",
            })?;
        // The blocking thread has neither the caller's span nor (with a
        // scoped subscriber) its dispatcher: carry both over.
        let parent = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
        let limits = self.limits;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            tracing::dispatcher::with_default(&dispatch, || {
                parent.in_scope(|| render_image(&sources.as_input(), &plan, &limits))
            })
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "render task failed");
            RenderError::Internal {
                context: "rendering",
            }
        })?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use imgmesh_proto::renderer::v1::RenderPlan;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::test_images;

    /// (span name, parent span name) pairs, in creation order.
    type SpanNames = Arc<Mutex<Vec<(String, Option<String>)>>>;

    /// Records each new span's name with its parent's name.
    struct SpanTree(SpanNames);

    impl<S> tracing_subscriber::Layer<S> for SpanTree
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_new_span(
            &self,
            _attrs: &tracing::span::Attributes<'_>,
            id: &tracing::span::Id,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let span = ctx.span(id).expect("new span is registered");
            let parent = span.parent().map(|parent| parent.name().to_owned());
            self.0
                .lock()
                .unwrap()
                .push((span.name().to_owned(), parent));
        }
    }

    /// The libvips spans opened on the blocking pool are children of the caller's span.
    #[tokio::test]
    async fn libvips_spans_nest_under_the_callers_span() {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(SpanTree(Arc::clone(&spans)));
        let _default = tracing::subscriber::set_default(subscriber);

        let pool = RenderPool::new(1, RenderLimits::default());
        let plan = RenderPlan {
            width: 50,
            ..RenderPlan::default()
        };
        let render = pool.render(RenderSources::original(test_images::jpeg(100, 80)), plan);
        let derivative = tracing::Instrument::instrument(render, tracing::info_span!("render"))
            .await
            .unwrap();
        assert_eq!((derivative.width, derivative.height), (50, 40));

        let spans = spans.lock().unwrap();
        for name in ["vips.thumbnail", "vips.encode"] {
            assert!(
                spans.contains(&(name.to_owned(), Some("render".to_owned()))),
                "{name} is not a child of render: {spans:?}"
            );
        }
    }

    /// A render waits while every worker is busy, and returns its permit when done.
    #[tokio::test]
    async fn renders_wait_for_a_free_worker() {
        let pool = RenderPool::new(1, RenderLimits::default());
        let plan = RenderPlan {
            width: 20,
            ..RenderPlan::default()
        };
        let busy = Arc::clone(&pool.permits).acquire_owned().await.unwrap();
        let mut render =
            std::pin::pin!(pool.render(RenderSources::original(test_images::jpeg(200, 100)), plan));
        let waited = tokio::time::timeout(std::time::Duration::from_millis(100), &mut render).await;
        assert!(waited.is_err(), "rendered without a free worker");

        drop(busy);
        let derivative = render.await.unwrap();
        assert_eq!((derivative.width, derivative.height), (20, 10));
        assert_eq!(pool.permits.available_permits(), 1);
    }
}
