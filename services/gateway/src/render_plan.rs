//! The imgix query → canonical [`RenderPlan`](imgmesh_proto::renderer::v1::RenderPlan),
//! by the shared `imgmesh-imgix-params` crate (spec-driven names, aliases,
//! base64 variants, ranges, defaults and `auto=format` negotiation).
//!
//! The gateway adds nothing of its own: the same crate normalises plans in
//! the renderer, so a plan from here and one from an internal caller hash
//! alike.

pub use imgmesh_imgix_params::ParamError as PlanError;
pub use imgmesh_imgix_params::ParsedPlan;

/// Parses the Source's `default_params` and the URL's raw `query` (the URL
/// wins) into the canonical plan; `accept` is the request's `Accept` header,
/// used only by `auto=format`.
pub fn parse_render_plan(
    default_params: &str,
    query: &str,
    accept: Option<&str>,
) -> Result<ParsedPlan, PlanError> {
    imgmesh_imgix_params::parse_render_plan(default_params, query, accept)
}

#[cfg(test)]
mod tests {
    use imgmesh_proto::renderer::v1::OutputFormat;

    use super::*;

    /// The Source's defaults apply under the URL, and auto=format consults Accept.
    #[test]
    fn defaults_query_and_accept_reach_the_plan() {
        let parsed =
            parse_render_plan("w=500&fm=png", "w=200&auto=format", Some("image/webp")).unwrap();
        assert_eq!(parsed.plan.width, 200);
        assert_eq!(parsed.plan.format(), OutputFormat::Webp);
        assert!(parsed.varies_on_accept);
    }

    /// An undecodable base64 value is the 400 the gateway answers.
    #[test]
    fn bad_base64_is_refused() {
        let error = parse_render_plan("", "txt64=@@@", None).unwrap_err();
        assert_eq!(error.to_string(), "txt64: value is not valid base64url");
    }
}
