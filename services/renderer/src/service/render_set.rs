//! `RenderSet`: several derivatives of one original in one call, the
//! original fetched once and decoded once for every plan that can share
//! the decode (see [`crate::pipeline::render_set`]).
//!
//! Each plan is looked up in the derivative cache under the key `Render`
//! uses for it, so a set and a single render share entries both ways: a
//! fresh entry is answered as a hit, and every derivative the set renders
//! is stored under its plan's key for its lifetime. The misses then take
//! one place in the render pool, one fetch and one blocking run. Unlike
//! `Render`, a set neither revalidates expired entries (it renders them
//! afresh) nor joins concurrent renders of the same entry. A plan that
//! asks for nothing (passed through) or names overlay images (`mark`,
//! `blend=<path>`) goes the way of a single `Render` instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgmesh_derivative_cache::{CacheNames, Conditional, unix_now};
use imgmesh_imgix_params::is_empty_plan;
use imgmesh_proto::renderer::v1::{
    CacheStatus, RenderPlan, RenderRequest, RenderResponse, RenderSetRequest, blend,
};

use crate::error::RenderError;
use crate::metrics::METRICS;
use crate::pipeline::ResolvedPlan;
use crate::service::job::{Job, Stored};
use crate::service::renderer::{Renderer, answer};

/// Most plans in one set.
pub const MAX_SET_PLANS: usize = 16;

/// A set's requests are never conditional.
const UNCONDITIONAL: Conditional<'static> = Conditional {
    if_none_match: "",
    if_modified_since: 0,
};

// === impl Renderer ===

impl Renderer {
    /// Answers a set: one response per plan, in the plans' order. The
    /// first failure fails the set; `timeout` is the caller's budget.
    pub async fn render_derivative_set(
        &self,
        request: RenderSetRequest,
        timeout: Option<Duration>,
    ) -> Result<Vec<RenderResponse>, RenderError> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        check_set(&request)?;
        let mut answers: Vec<Option<RenderResponse>> = vec![None; request.plans.len()];
        let mut misses = Vec::new();
        for (index, plan) in request.plans.iter().enumerate() {
            let single = single_request(&request, plan);
            let resolved = ResolvedPlan::resolve(plan)?;
            if is_empty_plan(resolved.canonical()) || names_overlay_images(resolved.canonical()) {
                let remaining = remaining(deadline);
                answers[index] = Some(self.render_derivative(single, remaining).await?);
                continue;
            }
            let names = CacheNames::new(
                &single.source_id,
                single.source_config_version,
                &single.path,
                resolved.canonical(),
            );
            let lookup = self.cache.lookup(&names, false).await;
            let (job, found) = Job::new(Arc::new(single), resolved, lookup, &names.base, deadline);
            if let Some(found) = found {
                let (meta, data) = found.into_parts();
                if meta.is_fresh(unix_now()) {
                    let fresh = self
                        .cache
                        .respond(&job.key, &meta, data, UNCONDITIONAL, CacheStatus::Hit)
                        .await;
                    if let Some(response) = fresh {
                        METRICS.derivative_lookup("hit");
                        answers[index] = Some(response);
                        continue;
                    }
                }
            }
            METRICS.derivative_lookup("miss");
            misses.push((index, job));
        }
        if let Some((_, first)) = misses.first() {
            let admission = self.admit(first)?;
            let mut original = self
                .fetcher
                .fetch(first.object(), first.remaining())
                .await?;
            let bytes = std::mem::take(&mut original.bytes);
            let plans = misses
                .iter()
                .map(|(_, job)| Arc::clone(&job.plan))
                .collect();
            let started = Instant::now();
            let derivatives = self
                .pool
                .render_set_admitted(admission, bytes, plans, deadline, std::future::pending())
                .await?;
            // One run made them all: each is counted with its share of it.
            let each = started.elapsed() / misses.len().max(1) as u32;
            for ((index, job), derivative) in misses.iter().zip(derivatives) {
                METRICS.rendered(super::rendering::format_label(derivative.format), each);
                let size = (derivative.width, derivative.height);
                let content_type = derivative.format.content_type();
                let stored = Stored::new(original.clone(), content_type, size, derivative.data);
                let entry = self.store(job, stored).await;
                answers[*index] = Some(answer(&entry, UNCONDITIONAL));
            }
        }
        answers
            .into_iter()
            .map(|answer| {
                answer.ok_or(RenderError::Internal {
                    context: "answering a render set",
                })
            })
            .collect()
    }
}

/// Refuses a set that names no Source, no path, no plan or too many.
fn check_set(request: &RenderSetRequest) -> Result<(), RenderError> {
    let empty = |field| RenderError::InvalidRequest {
        field,
        problem: "must not be empty".into(),
    };
    if request.source_id.is_empty() {
        return Err(empty("source_id"));
    }
    if request.path.is_empty() {
        return Err(empty("path"));
    }
    if request.plans.is_empty() {
        return Err(empty("plans"));
    }
    if request.plans.len() > MAX_SET_PLANS {
        return Err(RenderError::InvalidRequest {
            field: "plans",
            problem: format!("at most {MAX_SET_PLANS} plans in a set"),
        });
    }
    Ok(())
}

/// The single `Render` request of one plan of the set.
fn single_request(set: &RenderSetRequest, plan: &RenderPlan) -> RenderRequest {
    RenderRequest {
        source_id: set.source_id.clone(),
        source_config_version: set.source_config_version,
        path: set.path.clone(),
        plan: Some(plan.clone()),
        cache_ttl_seconds: set.cache_ttl_seconds,
        cache_ttl_behavior: set.cache_ttl_behavior,
        if_none_match: String::new(),
        if_modified_since: 0,
    }
}

/// Whether `plan` names images to fetch besides the original (`mark`,
/// `blend=<path>`).
pub(super) fn names_overlay_images(plan: &RenderPlan) -> bool {
    plan.watermark.is_some()
        || matches!(
            plan.blend.as_ref().and_then(|blend| blend.source.as_ref()),
            Some(blend::Source::Path(_))
        )
}

/// What is left until `deadline`, if there is one.
fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()))
}
