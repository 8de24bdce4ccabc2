//! The deploy-state group: where a Source stands in its deployment (only a
//! deployed Source serves), why the last deploy ended as it did, and when.

use imgmesh_proto::registry::v1::{self as proto, SourceStatus};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::columns::{Query, decode_error};

/// What an edit of a verified setting leaves in `status_message`.
const REDEPLOY_MESSAGE: &str = "settings changed: deploy the source to serve again";

/// A Source's deploy state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeployState {
    /// Where the Source stands.
    pub(crate) status: SourceStatus,
    /// Why the last deploy failed (or a note on success).
    pub(crate) message: String,
    /// When the last deploy finished, Unix seconds; 0 when never.
    pub(crate) last_deployed_at: i64,
}

// === impl DeployState ===

impl DeployState {
    /// A new Source's state: pending, never deployed.
    pub(crate) fn new_source() -> DeployState {
        DeployState {
            status: SourceStatus::Pending,
            message: String::new(),
            last_deployed_at: 0,
        }
    }

    /// Pending again after an edit of what a deploy verifies.
    pub(crate) fn needs_redeploy(&mut self) {
        self.status = SourceStatus::Pending;
        REDEPLOY_MESSAGE.clone_into(&mut self.message);
    }

    /// Whether the last deploy succeeded (and no edit undid it).
    pub(crate) fn deployed(&self) -> bool {
        self.status == SourceStatus::Deployed
    }

    /// Binds the `status` and `status_message` columns (the deploy itself
    /// writes `last_deployed_at`).
    pub(crate) fn bind<'q>(&'q self, query: Query<'q>) -> Query<'q> {
        query.bind(status_to_db(self.status)).bind(&self.message)
    }

    /// Reads the deploy columns.
    pub(crate) fn from_row(row: &AnyRow) -> Result<DeployState, sqlx::Error> {
        Ok(DeployState {
            status: status_from_db(&row.try_get::<String, _>("status")?)?,
            message: row.try_get("status_message")?,
            last_deployed_at: row.try_get("last_deployed_at")?,
        })
    }
}

impl From<&DeployState> for proto::DeployState {
    /// The group's public form.
    fn from(state: &DeployState) -> proto::DeployState {
        proto::DeployState {
            status: state.status.into(),
            message: state.message.clone(),
            last_deployed_at: state.last_deployed_at,
        }
    }
}

/// The stored name of a status.
pub(crate) fn status_to_db(status: SourceStatus) -> &'static str {
    match status {
        SourceStatus::Unspecified | SourceStatus::Pending => "pending",
        SourceStatus::Deploying => "deploying",
        SourceStatus::Deployed => "deployed",
        SourceStatus::Failed => "failed",
    }
}

fn status_from_db(text: &str) -> Result<SourceStatus, sqlx::Error> {
    match text {
        "pending" => Ok(SourceStatus::Pending),
        "deploying" => Ok(SourceStatus::Deploying),
        "deployed" => Ok(SourceStatus::Deployed),
        "failed" => Ok(SourceStatus::Failed),
        other => Err(decode_error("status", format!("unknown status {other:?}"))),
    }
}
