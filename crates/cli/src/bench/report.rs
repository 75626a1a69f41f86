//! The JSON-line format of `rump bench` (DESIGN.md): one object per
//! metric with our value, the baseline and the speedup.

use serde_json::json;

/// Which way a unit points. Throughput units are used by the ext2 and tcp
/// benchmarks.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds: smaller is better.
    Ns,
    /// Microseconds: smaller is better.
    Us,
    /// Milliseconds: smaller is better.
    Ms,
    /// Seconds: smaller is better.
    Secs,
    /// Bytes: smaller is better.
    Bytes,
    /// Megabytes per second: larger is better.
    MBps,
    /// Gigabits per second: larger is better.
    Gbps,
    /// Operations per second: larger is better.
    OpsPerSec,
    /// A dimensionless ratio of two figures of ours (no baseline).
    Ratio,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::Secs => "s",
            Unit::Bytes => "bytes",
            Unit::MBps => "MB/s",
            Unit::Gbps => "Gbit/s",
            Unit::OpsPerSec => "ops/s",
            Unit::Ratio => "ratio",
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(
            self,
            Unit::MBps | Unit::Gbps | Unit::OpsPerSec | Unit::Ratio
        )
    }
}

/// One metric of one benchmark.
pub struct Metric<'a> {
    pub bench: &'a str,
    pub metric: &'a str,
    pub value: f64,
    pub unit: Unit,
    /// Description and value of the baseline, if there is one.
    pub baseline: Option<(&'a str, f64)>,
}

impl Metric<'_> {
    /// The JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let round = |v: f64| (v * 100.0).round() / 100.0;
        match self.baseline {
            Some((name, base)) => {
                let speedup = if self.unit.higher_is_better() {
                    self.value / base
                } else {
                    base / self.value
                };
                json!({
                    "bench": self.bench, "metric": self.metric, "value": round(self.value),
                    "unit": self.unit.name(), "baseline": name, "baseline_value": round(base),
                    "speedup": round(speedup),
                })
            }
            None => json!({
                "bench": self.bench, "metric": self.metric, "value": round(self.value),
                "unit": self.unit.name(), "baseline": "none", "baseline_value": null,
                "speedup": null,
            }),
        }
    }

    /// Prints the line.
    pub fn print(&self) {
        println!("{}", self.to_json());
    }
}

/// The median of some samples (sorts them).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    if samples.is_empty() {
        return f64::NAN;
    }
    samples[samples.len() / 2]
}

/// The 99th percentile of sorted samples.
pub fn p99(sorted: &[f64]) -> f64 {
    sorted
        .get((sorted.len() * 99 / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speedup_direction() {
        let m = Metric {
            bench: "b",
            metric: "t_ns",
            value: 100.0,
            unit: Unit::Ns,
            baseline: Some(("host", 300.0)),
        };
        assert_eq!(m.to_json()["speedup"], 3.0);
        let m = Metric {
            bench: "b",
            metric: "x_mbps",
            value: 100.0,
            unit: Unit::MBps,
            baseline: Some(("host", 50.0)),
        };
        assert_eq!(m.to_json()["speedup"], 2.0);
        let m = Metric {
            bench: "b",
            metric: "m",
            value: 1.0,
            unit: Unit::Bytes,
            baseline: None,
        };
        assert_eq!(m.to_json()["baseline"], "none");
        assert!(m.to_json()["speedup"].is_null());
    }
}
