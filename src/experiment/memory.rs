//! Memory estimates: what one run will need at its peak, part by part, so that a
//! scenario that cannot fit is refused before it starts and `check` can show the
//! cost of each sweep point. The figures are deliberately a little generous.

use crate::protocols::MemoryPart;
use crate::scenario::{InputError, Plan, Scenario};
use crate::world::{LatencySpec, TopologySpec};

/// Bytes one run needs, by part.
#[derive(Clone, Debug, Default)]
pub struct Estimate {
    /// The parts, in the order they were estimated.
    pub parts: Vec<MemoryPart>,
}

impl Estimate {
    /// Bytes in all.
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum::<f64>().ceil() as u64
    }

    /// The largest part, if any.
    pub fn largest(&self) -> Option<&MemoryPart> {
        self.parts.iter().max_by(|a, b| a.bytes.total_cmp(&b.bytes))
    }
}

/// The peak memory of one run of `s`.
pub fn estimate(s: &Scenario) -> Estimate {
    let n = s.nodes as f64;
    let edges = n * s.mean_degree / 2.0;
    let queries = s.workload.rate.per_second() * s.duration.as_secs_f64() + s.workload.script.len() as f64;
    let samples = (s.duration.saturating_add(s.workload.timeout).0 / s.sample_every.0.max(1)) as f64 + 1.0;
    let copies = s.resources.types as f64 * s.resources.replicas.min(s.nodes as u32) as f64;
    let generator = match s.network.topology {
        // rustworkx builds a petgraph graph first (node 8 B, edge 24 B) and the
        // CSR build sorts an edge list (8 B an edge).
        TopologySpec::RandomRegular { .. } | TopologySpec::ErdosRenyi { .. } | TopologySpec::BarabasiAlbert { .. } => {
            n * 16.0 + edges * 40.0
        }
        TopologySpec::WattsStrogatz { .. } => edges * 40.0,
        TopologySpec::Ring {} | TopologySpec::Edges { .. } | TopologySpec::KOut { .. } => edges * 24.0,
    };
    let mut parts = vec![
        MemoryPart::new("overlay (CSR)", "network.nodes, the topology's degree", (n + 1.0) * 4.0 + edges * 8.0),
        MemoryPart::new("overlay construction", "network.nodes, the topology's degree", generator),
        MemoryPart::new("per-node queues and counters", "network.nodes", n * 40.0),
        MemoryPart::new(
            "resource index",
            "resources.types × resources.replicas",
            copies * 16.0 + (n + s.resources.types as f64) * 4.0,
        ),
        MemoryPart::new("query records", "workload.rate × duration", queries * 40.0),
        MemoryPart::new("time series", "sample_every (longer), duration", samples * 24.0),
    ];
    if matches!(s.network.latency, LatencySpec::Euclidean { .. }) {
        parts.push(MemoryPart::new("node positions", "network.nodes", n * 8.0));
    }
    if s.resources.placement.permutes() {
        parts.push(MemoryPart::new("placement ranks", "network.nodes", n * 5.0));
    }
    if s.output.queries {
        parts.push(MemoryPart::new("queries.csv rows", "[output] queries = false", queries * 120.0));
    }
    parts.extend(s.protocol.memory(&s.figures()));
    Estimate { parts }
}

/// How many runs of a plan may run at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fit {
    /// Threads to run on: the ones asked for, or fewer if memory allows fewer runs at once.
    pub threads: usize,
    /// Why there are fewer, for the user.
    pub note: Option<String>,
}

/// The threads of `threads` whose runs fit in the memory available now, judged by
/// the largest per-run estimate of the plan; an error if not even one run fits.
pub fn fit_threads(plan: &Plan, threads: usize) -> Result<Fit, InputError> {
    let all = Fit { threads, note: None };
    let Some((point, est)) =
        plan.points.iter().map(|p| (p.index, estimate(&p.scenario))).max_by_key(|(_, e)| e.total())
    else {
        return Ok(all);
    };
    let need = est.total();
    let Some(avail) = available_bytes() else { return Ok(all) };
    if need > avail {
        let (what, keys) = est.largest().map_or(("nothing", ""), |p| (p.what, p.shrink));
        return Err(InputError::new(format!(
            "sweep point {point} needs about {} per run but this machine has {} available; most of it is the {what} — reduce {keys}",
            human(need),
            human(avail)
        ))
        .file(&plan.file));
    }
    let fit = (avail / need.max(1)).max(1) as usize;
    if fit < threads {
        let note =
            format!("{} per run fits {fit} runs in {} of memory; running {fit} at a time", human(need), human(avail));
        return Ok(Fit { threads: fit, note: Some(note) });
    }
    Ok(all)
}

/// Memory the machine can give right now (MemAvailable), if known.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Human-readable bytes.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KiB", (b / 1024.0).max(1.0))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::experiment::execute;
    use crate::scenario::plan_from_str;

    /// MDS-2 with registrations every `refresh` on 500 nodes: sites of 10 nodes
    /// under one root, 1 ms of service per message.
    fn hierarchical(refresh: &str) -> crate::scenario::Plan {
        let text = format!(
            r#"name = "backlog"
duration = "4s"
[network]
nodes = 500
service_time = {{ dist = "constant", value = "1ms" }}
topology = {{ kind = "ring" }}
[resources]
types = 5
[workload]
rate = "0/s"
timeout = "1s"
[protocol]
name = "hierarchical"
depth = 2
refresh = "{refresh}"
"#
        );
        plan_from_str(&text, "backlog.toml", Path::new("."), &[], None).expect("valid scenario")
    }

    #[test]
    fn an_overloaded_giis_backlog_is_estimated_within_a_factor_of_two() {
        // Registrations every 2 ms: each site GIIS gets 5,000/s and serves 1,000/s,
        // the root gets 25,000/s; the queues grow for the whole run.
        let slow = hierarchical("2s");
        let fast = hierarchical("2ms");
        let part = |plan: &crate::scenario::Plan| {
            estimate(&plan.points[0].scenario).parts.iter().find(|p| p.what == "registration backlog").map(|p| p.bytes)
        };
        assert_eq!(part(&slow), None, "a GIIS that keeps up leaves no backlog");
        let predicted = part(&fast).expect("a backlog");
        let grew = |plan: &crate::scenario::Plan| execute(plan, &plan.points[0], 0).expect("runs").run_memory_mb;
        let measured = (grew(&fast) - grew(&slow)) * 1024.0 * 1024.0;
        let ratio = predicted / measured;
        assert!((0.5..2.0).contains(&ratio), "predicted {predicted:.0} B, measured {measured:.0} B");
    }
}
