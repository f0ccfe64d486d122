//! The report of `tickcast-load floor`: each run (tickcast, the floor, the
//! tokio reference) and the server CPU per delivery of each as a multiple
//! of the floor's.

use std::fmt::Write as _;

use serde::Serialize;

use crate::floor::Tally;
use crate::load::report::{micros, rate, Report};

/// Which server a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// The tickcast server at `--server`.
    Tickcast,
    /// The floor: plain loops of blocking writes, one per core.
    Plain,
    /// One tokio writer task per connection.
    Tasks,
}

impl RunKind {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tickcast => "tickcast",
            Self::Plain => "floor (plain loop)",
            Self::Tasks => "tokio tasks",
        }
    }
}

/// One run of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct FloorRun {
    /// The server.
    pub server: RunKind,
    /// The load generator's report of the run.
    pub report: Report,
    /// What the floor server says it wrote (floor runs).
    pub tally: Option<Tally>,
    /// What makes the run not ok beyond the report's problems.
    pub problems: Vec<String>,
}

impl FloorRun {
    /// A run and its check: a floor server must have written every frame
    /// it was given, and the clients must have read them all.
    pub fn new(server: RunKind, report: Report, tally: Result<Option<Tally>, String>) -> Self {
        let mut problems = Vec::new();
        let tally = match tally {
            Ok(tally) => tally,
            Err(reason) => {
                problems.push(reason);
                None
            }
        };
        if let Some(t) = tally {
            if t.errors > 0 || t.skipped > 0 {
                problems.push(format!(
                    "the floor server failed {} writes and skipped {} deliveries",
                    t.errors, t.skipped
                ));
            }
            // The clients read every frame the floor wrote (the ledger
            // checks the deliveries inside them).
            if t.writes != report.deliveries.event_frames {
                problems.push(format!(
                    "the floor server wrote {} frames, the clients read {}",
                    t.writes, report.deliveries.event_frames
                ));
            }
        }
        Self {
            server,
            report,
            tally,
            problems,
        }
    }

    /// Server CPU per delivery, µs.
    pub fn us_per_delivery(&self) -> Option<f64> {
        self.report.server_process.as_ref()?.cpu_us_per_delivery
    }

    /// Server CPU per event frame written (a write), µs: what each write
    /// costs when a server puts several events in one frame.
    pub fn us_per_frame(&self) -> Option<f64> {
        let cpu_s = self.report.server_process.as_ref()?.cpu_s_delivering?;
        let frames = self.report.deliveries.event_frames;
        (frames > 0).then(|| cpu_s * 1e6 / frames as f64)
    }

    /// Every delivery checked and none wrong.
    pub fn ok(&self) -> bool {
        self.report.ok && self.problems.is_empty()
    }
}

/// CPU per delivery of each server and its ratio to the floor.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// The floor (plain loop), µs per delivery.
    pub floor_us: Option<f64>,
    /// One tokio task per connection, µs per delivery.
    pub tasks_us: Option<f64>,
    /// tickcast, µs per delivery.
    pub tickcast_us: Option<f64>,
    /// tickcast / floor.
    pub ratio: Option<f64>,
    /// tokio tasks / floor.
    pub tasks_ratio: Option<f64>,
}

impl Comparison {
    /// The comparison of `runs` (the last run of each kind counts).
    pub fn of(runs: &[FloorRun]) -> Self {
        let us = |kind: RunKind| {
            runs.iter()
                .rev()
                .find(|r| r.server == kind)
                .and_then(FloorRun::us_per_delivery)
        };
        let (floor_us, tasks_us, tickcast_us) = (
            us(RunKind::Plain),
            us(RunKind::Tasks),
            us(RunKind::Tickcast),
        );
        Self {
            floor_us,
            tasks_us,
            tickcast_us,
            ratio: ratio(tickcast_us, floor_us),
            tasks_ratio: ratio(tasks_us, floor_us),
        }
    }

    /// `floor X us/delivery, tickcast Y us/delivery, ratio Y/X`.
    pub fn summary(&self) -> String {
        let us = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} us/delivery"));
        let times = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
        let mut line = format!(
            "floor {}, tickcast {}, ratio {}",
            us(self.floor_us),
            us(self.tickcast_us),
            times(self.ratio)
        );
        if self.tasks_us.is_some() {
            let _ = write!(
                line,
                " (tokio tasks {}, {} x the floor)",
                us(self.tasks_us),
                times(self.tasks_ratio)
            );
        }
        line
    }
}

/// `value / floor`, when both are known and the floor is above 0.
pub fn ratio(value: Option<f64>, floor: Option<f64>) -> Option<f64> {
    let (value, floor) = (value?, floor?);
    (floor > 0.0 && value.is_finite()).then(|| value / floor)
}

/// The runs of `tickcast-load floor` side by side.
#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    /// Scenario name.
    pub scenario: String,
    /// Every run ok.
    pub ok: bool,
    /// The runs, in the order they ran.
    pub runs: Vec<FloorRun>,
    /// CPU per delivery against the floor.
    pub comparison: Comparison,
}

impl FloorReport {
    /// The report of `runs`.
    pub fn new(scenario: &str, runs: Vec<FloorRun>) -> Self {
        Self {
            scenario: scenario.to_owned(),
            ok: runs.iter().all(FloorRun::ok),
            comparison: Comparison::of(&runs),
            runs,
        }
    }

    /// One row per run, then the summary line, as Markdown.
    pub fn table(&self) -> String {
        let mut out = format!(
            "floor comparison, scenario {}\n\n| server | connections | delivered/s | missing / dup | events per frame | bytes per frame | p50 | p99 | server CPU | CPU per frame | CPU per delivery | x floor |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
            self.scenario
        );
        for run in &self.runs {
            let r = &run.report;
            let d = &r.deliveries;
            let cpu = r
                .server_process
                .as_ref()
                .and_then(|p| p.cpu_percent_publish)
                .map_or("-".to_owned(), |p| format!("{p:.0} %"));
            let per_write = run
                .us_per_frame()
                .map_or("-".to_owned(), |us| format!("{us:.2} us"));
            let per = run
                .us_per_delivery()
                .map_or("-".to_owned(), |us| format!("{us:.2} us"));
            let times = ratio(run.us_per_delivery(), self.comparison.floor_us)
                .map_or("-".to_owned(), |x| format!("{x:.2}"));
            let (per_frame, frame) = match d.event_frames {
                0 => ("-".to_owned(), "-".to_owned()),
                n => (
                    format!("{:.2}", d.received as f64 / n as f64),
                    format!("{:.1}", d.event_frame_bytes as f64 / n as f64),
                ),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} / {} | {per_frame} | {frame} | {} | {} | {cpu} | {per_write} | {per} | {times} |",
                run.server.name(),
                r.connections.established,
                rate(d.delivered_per_s),
                d.missing,
                d.duplicates,
                micros(r.latency_us.p50),
                micros(r.latency_us.p99),
            );
        }
        let _ = writeln!(out, "\n{}", self.comparison.summary());
        for run in self.runs.iter().filter(|r| !r.ok()) {
            let problems: Vec<&str> = run
                .report
                .problems
                .iter()
                .chain(&run.problems)
                .map(String::as_str)
                .collect();
            let _ = writeln!(
                out,
                "{}: FAILED: {}",
                run.server.name(),
                problems.join("; ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_divide_by_the_floor_when_there_is_one() {
        assert_eq!(ratio(Some(11.0), Some(5.0)), Some(2.2));
        assert_eq!(ratio(Some(11.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(5.0)), None);
        assert_eq!(ratio(Some(f64::NAN), Some(5.0)), None);
        let c = Comparison {
            floor_us: Some(5.0),
            tasks_us: Some(6.0),
            tickcast_us: Some(11.1),
            ratio: ratio(Some(11.1), Some(5.0)),
            tasks_ratio: ratio(Some(6.0), Some(5.0)),
        };
        assert_eq!(
            c.summary(),
            "floor 5.00 us/delivery, tickcast 11.10 us/delivery, ratio 2.22 (tokio tasks 6.00 us/delivery, 1.20 x the floor)"
        );
        assert_eq!(
            Comparison::default().summary(),
            "floor -, tickcast -, ratio -"
        );
    }
}
