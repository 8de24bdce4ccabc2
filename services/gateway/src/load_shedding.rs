//! A bound on the public requests the gateway works on at once
//! (`--max-in-flight`). Beyond it a request is refused at once with 503 and
//! `Retry-After: 1` — never queued, so a burst cannot pile up memory and
//! latency, and never a 500 — and counted in
//! `imgmesh_http_requests_shed_total`; `imgmesh_http_requests_in_flight`
//! shows how many are being worked on.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::GatewayState;
use crate::error::GatewayError;
use crate::metrics::METRICS;

/// The permits of in-flight public requests.
#[derive(Debug, Clone)]
pub(crate) struct InFlightLimit {
    permits: Arc<Semaphore>,
}

/// One admitted request: counted in flight until dropped.
struct InFlight {
    _permit: OwnedSemaphorePermit,
}

// === impl InFlightLimit ===

impl InFlightLimit {
    /// A limit of `max` requests at once.
    pub(crate) fn new(max: usize) -> InFlightLimit {
        InFlightLimit {
            permits: Arc::new(Semaphore::new(max)),
        }
    }

    /// Admits one more request, or `None` when `max` are in flight.
    fn try_admit(&self) -> Option<InFlight> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        METRICS.in_flight_started();
        Some(InFlight { _permit: permit })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        METRICS.in_flight_ended();
    }
}

/// Middleware of the public router: runs the request when a permit is free,
/// answers 503 at once when none is.
pub(crate) async fn limit_in_flight(
    State(state): State<GatewayState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(_admitted) = state.in_flight().try_admit() else {
        METRICS.request_shed();
        return GatewayError::Overloaded.into_response();
    };
    // Bodies are in memory once the handler returns, so the permit covers
    // all the work the request causes.
    next.run(request).await
}
