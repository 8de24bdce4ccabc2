//! One registry call as the admin API and the dashboard make it: with a
//! deadline the registry sees, a client-side timeout for a registry that
//! never answers, and its error turned into an [`AdminError`].

use std::time::Duration;

use imgmesh_proto::registry::v1::Source;

use super::error::AdminError;

/// Deadline for one registry call made by a JSON endpoint.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// A registry request with the admin API's deadline.
pub(crate) fn timed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(REGISTRY_TIMEOUT);
    request
}

/// Awaits a registry call, also giving up on a registry that accepted the
/// connection but never answers.
pub(crate) async fn call<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, AdminError> {
    match tokio::time::timeout(REGISTRY_TIMEOUT + Duration::from_millis(500), call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(AdminError::from_registry(&status)),
        Err(_elapsed) => Err(AdminError::registry_timed_out()),
    }
}

/// The Source of a registry answer, which must have one.
pub(crate) fn required(source: Option<Source>) -> Result<Source, AdminError> {
    source.ok_or_else(|| {
        AdminError::coded(
            imgmesh_errors::ErrorCode::Internal,
            "registry: answer without a source",
        )
    })
}
