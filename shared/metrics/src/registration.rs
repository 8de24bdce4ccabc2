//! Registering a part of the process's metrics: each metric is named,
//! described and handed back in one call, so a service writes its struct of
//! metric handles once instead of building it and then registering a clone
//! of every field (the crate's documentation has an example).

use std::hash::Hash;

use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::registry::{Metric, Registry, Unit};

use crate::registry;

/// Registers what `build` names in the process registry (see
/// [`Registration`]) and returns what it built. The registry is locked while
/// `build` runs: `build` must not register anything through another call.
pub fn register<T>(build: impl FnOnce(&mut Registration<'_>) -> T) -> T {
    let mut registry = registry()
        .lock()
        // A panic while registering leaves a usable registry behind.
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    build(&mut Registration {
        registry: &mut registry,
    })
}

/// Creates every series of `family` named in `label_sets` at zero, so
/// dashboards and alerts see them, and rates work, from the first scrape.
pub fn start_at_zero<S, M, C>(family: &Family<S, M, C>, label_sets: impl IntoIterator<Item = S>)
where
    S: Clone + Hash + Eq,
    C: MetricConstructor<M>,
{
    for labels in label_sets {
        drop(family.get_or_create(&labels));
    }
}

/// The process registry while [`register`] holds it: each call registers one
/// metric and gives it back to keep.
///
/// Names follow the crate's rules: counters without their `_total` suffix,
/// durations and sizes with a [`Unit`] instead of a suffix.
#[derive(Debug)]
pub struct Registration<'a> {
    registry: &'a mut Registry,
}

// === impl Registration ===

impl Registration<'_> {
    /// `metric`, registered as `name` with `help`.
    pub fn metric<M: Metric + Clone>(
        &mut self,
        name: impl Into<String>,
        help: impl Into<String>,
        metric: M,
    ) -> M {
        self.registry.register(name, help, metric.clone());
        metric
    }

    /// `metric`, registered as `name` in `unit` with `help`.
    pub fn metric_with_unit<M: Metric + Clone>(
        &mut self,
        name: impl Into<String>,
        help: impl Into<String>,
        unit: Unit,
        metric: M,
    ) -> M {
        self.registry
            .register_with_unit(name, help, unit, metric.clone());
        metric
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    use super::*;

    /// What `register` builds is what is registered: the handle it returns
    /// moves the exported value, with its unit.
    #[test]
    fn registered_handles_are_exported() {
        let (counter, gauge) = register(|metrics| {
            (
                metrics.metric(
                    "imgmesh_test_registered_things",
                    "Things registered by the test",
                    Counter::<u64>::default(),
                ),
                metrics.metric_with_unit(
                    "imgmesh_test_registered_size",
                    "Size the test registered",
                    Unit::Bytes,
                    Gauge::<i64>::default(),
                ),
            )
        });
        counter.inc_by(2);
        gauge.set(7);
        let text = crate::encode();
        assert!(
            text.contains("imgmesh_test_registered_things_total 2"),
            "{text}"
        );
        assert!(
            text.contains("imgmesh_test_registered_size_bytes 7"),
            "{text}"
        );
    }

    /// Series started at zero are exported before their first event.
    #[test]
    fn started_series_are_exported_at_zero() {
        let family = register(|metrics| {
            metrics.metric(
                "imgmesh_test_started",
                "Series the test started",
                Family::<[(&'static str, &'static str); 1], Counter>::default(),
            )
        });
        start_at_zero(&family, ["a", "b"].map(|name| [("name", name)]));
        let text = crate::encode();
        assert!(
            text.contains("imgmesh_test_started_total{name=\"a\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("imgmesh_test_started_total{name=\"b\"} 0"),
            "{text}"
        );
    }
}
