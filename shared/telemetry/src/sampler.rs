//! Which traces are recorded: the standard `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` settings, read through [`TelemetryArgs`]
//! (`crate::TelemetryArgs`) and turned into the SDK's [`Sampler`].
//!
//! The names are the OpenTelemetry SDK configuration's: `always_on`,
//! `always_off`, `traceidratio` and the three `parentbased_*` forms, which
//! follow an incoming `traceparent`'s sampled flag and use the named
//! sampler only for traces that start here. The default,
//! `parentbased_always_on`, is the specification's. The remote samplers
//! (`jaeger_remote`, `xray`) are not supported and refused at startup.

use anyhow::Context as _;
use opentelemetry_sdk::trace::Sampler;

/// A value of `OTEL_TRACES_SAMPLER` (`--traces-sampler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplerName {
    /// Record every trace.
    #[value(name = "always_on")]
    AlwaysOn,
    /// Record no trace (trace context still propagates, unsampled).
    #[value(name = "always_off")]
    AlwaysOff,
    /// Record the fraction `OTEL_TRACES_SAMPLER_ARG` of traces, chosen by
    /// trace id.
    #[value(name = "traceidratio")]
    TraceIdRatio,
    /// Follow the parent's decision; record every trace started here.
    #[value(name = "parentbased_always_on")]
    ParentBasedAlwaysOn,
    /// Follow the parent's decision; record no trace started here.
    #[value(name = "parentbased_always_off")]
    ParentBasedAlwaysOff,
    /// Follow the parent's decision; record the fraction
    /// `OTEL_TRACES_SAMPLER_ARG` of the traces started here.
    #[value(name = "parentbased_traceidratio")]
    ParentBasedTraceIdRatio,
}

/// The sampler `name` with its argument `arg` (`OTEL_TRACES_SAMPLER_ARG`):
/// the ratios take a probability from 0 to 1, 1 when not given; the other
/// samplers ignore it, as the specification says. A ratio that is not a
/// number in 0..=1 is an error rather than the specification's silent
/// fallback to 1, so a typo does not record every trace unnoticed.
pub fn sampler(name: SamplerName, arg: Option<&str>) -> anyhow::Result<Sampler> {
    let ratio = || -> anyhow::Result<f64> {
        let Some(arg) = arg.map(str::trim).filter(|arg| !arg.is_empty()) else {
            return Ok(1.0);
        };
        let ratio: f64 = arg
            .parse()
            .with_context(|| format!("OTEL_TRACES_SAMPLER_ARG {arg:?} is not a number"))?;
        anyhow::ensure!(
            (0.0..=1.0).contains(&ratio),
            "OTEL_TRACES_SAMPLER_ARG {arg:?} is not a probability from 0 to 1"
        );
        Ok(ratio)
    };
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(match name {
        SamplerName::AlwaysOn => Sampler::AlwaysOn,
        SamplerName::AlwaysOff => Sampler::AlwaysOff,
        SamplerName::TraceIdRatio => Sampler::TraceIdRatioBased(ratio()?),
        SamplerName::ParentBasedAlwaysOn => parent_based(Sampler::AlwaysOn),
        SamplerName::ParentBasedAlwaysOff => parent_based(Sampler::AlwaysOff),
        SamplerName::ParentBasedTraceIdRatio => parent_based(Sampler::TraceIdRatioBased(ratio()?)),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample as _};

    use super::*;
    use crate::TelemetryArgs;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        telemetry: TelemetryArgs,
    }

    /// Whether `sampler` records a span under `parent` (None: a root span)
    /// of trace `trace_id`.
    fn samples(sampler: &Sampler, parent: Option<bool>, trace_id: u128) -> bool {
        let parent = parent.map(|sampled| {
            let flags = if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            };
            opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(trace_id),
                SpanId::from(7_u64),
                flags,
                true,
                TraceState::default(),
            ))
        });
        let result = sampler.should_sample(
            parent.as_ref(),
            TraceId::from(trace_id),
            "test",
            &SpanKind::Server,
            &[],
            &[],
        );
        result.decision == SamplingDecision::RecordAndSample
    }

    /// The sampler the flags (or their environment variables) select.
    fn selected(args: &[&str]) -> anyhow::Result<Sampler> {
        let cli = Cli::try_parse_from(std::iter::once("imgmesh").chain(args.iter().copied()))?;
        cli.telemetry.sampler()
    }

    /// Each standard sampler name decides as the OpenTelemetry
    /// specification says for a root span and for sampled and unsampled
    /// remote parents; the default is parentbased_always_on.
    #[test]
    fn sampler_names_select_the_standard_samplers() {
        const TRACE: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
        // (flags, root, under a sampled parent, under an unsampled parent)
        let cases: [(&[&str], bool, bool, bool); 7] = [
            (&[], true, true, false),
            (&["--traces-sampler", "always_on"], true, true, true),
            (&["--traces-sampler", "always_off"], false, false, false),
            (
                &["--traces-sampler", "parentbased_always_on"],
                true,
                true,
                false,
            ),
            (
                &["--traces-sampler", "parentbased_always_off"],
                false,
                true,
                false,
            ),
            (
                &[
                    "--traces-sampler",
                    "traceidratio",
                    "--traces-sampler-arg",
                    "1",
                ],
                true,
                true,
                true,
            ),
            (
                &[
                    "--traces-sampler",
                    "parentbased_traceidratio",
                    "--traces-sampler-arg",
                    "0",
                ],
                false,
                true,
                false,
            ),
        ];
        for (args, root, under_sampled, under_unsampled) in cases {
            let sampler = selected(args).unwrap();
            assert_eq!(samples(&sampler, None, TRACE), root, "{args:?} root");
            assert_eq!(
                samples(&sampler, Some(true), TRACE),
                under_sampled,
                "{args:?} sampled parent"
            );
            assert_eq!(
                samples(&sampler, Some(false), TRACE),
                under_unsampled,
                "{args:?} unsampled parent"
            );
        }
    }

    /// A ratio keeps about that fraction of root traces (by trace id), and
    /// a missing argument means 1.
    #[test]
    fn traceidratio_keeps_its_fraction() {
        let quarter = selected(&[
            "--traces-sampler",
            "traceidratio",
            "--traces-sampler-arg",
            "0.25",
        ])
        .unwrap();
        // Trace ids spread evenly over the lower 64 bits the ratio looks at.
        let kept = (0..1000_u128)
            .filter(|i| samples(&quarter, None, (i * (u128::from(u64::MAX) / 1000)) | 1))
            .count();
        assert!((200..=300).contains(&kept), "{kept} of 1000 kept at 0.25");
        let all = selected(&["--traces-sampler", "traceidratio"]).unwrap();
        assert!((1..=1000_u128).all(|i| samples(&all, None, i << 64)));
    }

    /// Unknown sampler names and ratios that are not probabilities are
    /// refused rather than replaced by a default.
    #[test]
    fn bad_sampler_settings_are_refused() {
        assert!(selected(&["--traces-sampler", "jaeger_remote"]).is_err());
        assert!(selected(&["--traces-sampler", "AlwaysOn"]).is_err());
        for arg in ["1.5", "-0.1", "half", "NaN"] {
            let arg_flag = format!("--traces-sampler-arg={arg}");
            let error = selected(&["--traces-sampler", "traceidratio", &arg_flag])
                .err()
                .unwrap_or_else(|| panic!("{arg} accepted"));
            assert!(
                error.to_string().contains("OTEL_TRACES_SAMPLER_ARG"),
                "{error}"
            );
        }
        // The argument is ignored by samplers that take none.
        assert!(
            selected(&[
                "--traces-sampler",
                "always_on",
                "--traces-sampler-arg",
                "half"
            ])
            .is_ok()
        );
    }
}
