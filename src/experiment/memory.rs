//! Memory estimates: what one run will need at its peak, part by part, so that a
//! scenario that cannot fit is refused before it starts and `check` can show the
//! cost of each sweep point. The figures are deliberately a little generous.

use std::path::Path;

use crate::dynamics::Uplink;
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
    let samples = s.window().samples() as f64;
    let copies = (s.resources.total_copies() as f64).min(s.resources.types as f64 * s.nodes as f64);
    let generator = match s.network.topology {
        // rustworkx builds a petgraph graph first (node 8 B, edge 24 B) and the
        // CSR build sorts an edge list (8 B an edge).
        TopologySpec::RandomRegular { .. } | TopologySpec::ErdosRenyi { .. } | TopologySpec::BarabasiAlbert { .. } => {
            n * 16.0 + edges * 40.0
        }
        TopologySpec::WattsStrogatz { .. } => edges * 40.0,
        TopologySpec::Ring {}
        | TopologySpec::Edges { .. }
        | TopologySpec::KOut { .. }
        | TopologySpec::PowerLaw { .. } => edges * 24.0 + n * 8.0,
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
    match &s.network.latency {
        LatencySpec::Euclidean { .. } => parts.push(MemoryPart::new("node positions", "network.nodes", n * 8.0)),
        LatencySpec::TransitStub(_) => parts.push(MemoryPart::new("node routers", "network.nodes", n * 4.0)),
        // One copy per file whatever the runs; counted in each run's estimate to stay on the safe side.
        LatencySpec::Matrix(m) => {
            let hosts = m.matrix().map_or(0.0, |m| m.hosts() as f64);
            parts.push(MemoryPart::new("latency matrix", "the matrix file's hosts", hosts * hosts * 8.0 + hosts * 4.0));
        }
        _ => {}
    }
    if s.resources.placement.permutes() {
        parts.push(MemoryPart::new("placement ranks", "network.nodes", n * 5.0));
    }
    let rates: f64 = s.resources.changes.rates().iter().sum();
    if rates > 0.0 {
        // Each change keeps the node's new type set (a box of a few types, 48 B);
        // the copies and the holder lists now and ever are kept besides.
        let changes = n * rates * s.duration.saturating_add(s.workload.timeout).as_secs_f64();
        parts.push(MemoryPart::new(
            "resource change history",
            "resources.changes, duration, network.nodes",
            n * 24.0 + changes * 48.0 + copies * 16.0,
        ));
    }
    if !s.classes.list.is_empty() {
        parts.push(MemoryPart::new("node classes", "network.classes", n));
    }
    if s.classes.uplink != Uplink::Unlimited
        || s.classes.list.iter().any(|c| c.uplink.is_some_and(|u| u != Uplink::Unlimited))
    {
        parts.push(MemoryPart::new("uplinks", "network.uplink, network.classes", n * 16.0));
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
    let Some(Available { bytes: avail, limit }) = available() else { return Ok(all) };
    if need > avail {
        let (what, keys) = est.largest().map_or(("nothing", ""), |p| (p.what, p.shrink));
        return Err(InputError::new(format!(
            "sweep point {point} needs about {} per run but only {} is available ({limit}); most of it is the {what} — reduce {keys}",
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

/// Memory this process may still take, and the limit that sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Available {
    /// Bytes.
    pub bytes: u64,
    /// What limits it, in words.
    pub limit: &'static str,
}

/// Memory this process may take right now, if known: the least of the machine's
/// free memory (MemAvailable), the room left under the memory limit of its cgroup
/// and every cgroup above it (v1 or v2, as Slurm's `--mem` and containers set), and
/// the room left under its address-space limit (`ulimit -v`, RLIMIT_AS).
pub fn available() -> Option<Available> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cgroups = read("/proc/self/cgroup");
    let status = read("/proc/self/status");
    [
        (meminfo_available(&read("/proc/meminfo")), "free memory"),
        (cgroup_room(Path::new("/sys/fs/cgroup"), &cgroups), "the cgroup's memory limit"),
        (address_space_room(&read("/proc/self/limits"), &status), "the address-space limit (ulimit -v)"),
    ]
    .into_iter()
    .filter_map(|(bytes, limit)| Some(Available { bytes: bytes?, limit }))
    .min_by_key(|a| a.bytes)
}

/// Bytes this process may take right now, if known (see [`available`]).
pub fn available_bytes() -> Option<u64> {
    available().map(|a| a.bytes)
}

/// MemAvailable of /proc/meminfo, in bytes.
fn meminfo_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// The room under RLIMIT_AS (from /proc/self/limits) above the address space in use
/// (VmSize of /proc/self/status); `None` when unlimited.
fn address_space_room(limits: &str, status: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line.trim_start_matches("Max address space").split_whitespace().next()?.parse().ok()?;
    let size = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let used = size.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024;
    Some(soft.saturating_sub(used))
}

/// The least room, limit minus usage, over the memory cgroups of this process and
/// their ancestors under `root` (normally /sys/fs/cgroup), given /proc/self/cgroup:
/// cgroup v2 (`0::/path`, memory.max and memory.current) and v1 (`N:memory:/path`,
/// memory.limit_in_bytes and memory.usage_in_bytes under root/memory). `None`
/// when no limit is set.
fn cgroup_room(root: &Path, proc_self_cgroup: &str) -> Option<u64> {
    let mut least: Option<u64> = None;
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let (base, limit_file, usage_file) = if id == "0" && controllers.is_empty() {
            (root.to_path_buf(), "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), "memory.limit_in_bytes", "memory.usage_in_bytes")
        } else {
            continue;
        };
        // The cgroup itself and every ancestor up to the root of the hierarchy.
        let mut dir = base.join(path.trim_start_matches('/'));
        loop {
            let number = |file: &str| std::fs::read_to_string(dir.join(file)).ok()?.trim().parse::<u64>().ok();
            // "max" (v2) does not parse; v1 writes no limit as a number near 2^63.
            if let Some(limit) = number(limit_file).filter(|&l| l < 1 << 60) {
                let room = limit.saturating_sub(number(usage_file).unwrap_or(0));
                least = Some(least.map_or(room, |l| l.min(room)));
            }
            if dir == base || !dir.pop() || !dir.starts_with(&base) {
                break;
            }
        }
    }
    least
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
    fn the_address_space_limit_leaves_the_room_above_what_is_mapped() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max address space         4294967296           unlimited            bytes\n";
        let status = "Name:\tpeergrid\nVmSize:\t  1048576 kB\n";
        assert_eq!(address_space_room(limits, status), Some(3 << 30));
        let unlimited = "Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(address_space_room(unlimited, status), None);
        assert_eq!(meminfo_available("MemTotal: 100 kB\nMemAvailable:   2048 kB\n"), Some(2 << 20));
    }

    #[test]
    fn the_tightest_cgroup_limit_counts_in_v1_and_v2() {
        let root = tempfile::tempdir().expect("a temporary folder");
        let write = |dir: &str, file: &str, text: &str| {
            let d = root.path().join(dir);
            std::fs::create_dir_all(&d).expect("folder");
            std::fs::write(d.join(file), text).expect("file");
        };
        // v2: the job's own cgroup has no limit, its parent (the Slurm step) does.
        write("slurm/job", "memory.max", "max\n");
        write("slurm/job", "memory.current", "100\n");
        write("slurm", "memory.max", "1000\n");
        write("slurm", "memory.current", "400\n");
        assert_eq!(cgroup_room(root.path(), "0::/slurm/job\n"), Some(600));
        // v1: the memory controller's hierarchy, with "no limit" written as about 2^63.
        write("memory/docker/abc", "memory.limit_in_bytes", "5000\n");
        write("memory/docker/abc", "memory.usage_in_bytes", "1000\n");
        write("memory", "memory.limit_in_bytes", "9223372036854771712\n");
        assert_eq!(cgroup_room(root.path(), "4:memory:/docker/abc\n1:cpu:/\n"), Some(4000));
        assert_eq!(cgroup_room(root.path(), "1:cpu:/\n"), None);
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
