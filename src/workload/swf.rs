//! The Standard Workload Format of the Parallel Workloads Archive (Feitelson,
//! Tsafrir, Krakov, "Experience with using the Parallel Workloads Archive",
//! JPDC 74(10), 2014): one job per line, 18 whitespace-separated numbers, −1
//! for unknown; lines starting with `;` are the header, whose `Partition:`
//! lines name the partitions (the LCG log's sites). Plain or gzipped text.

use std::io::Read;
use std::path::Path;

/// One job of a log: the fields a simulation uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwfJob {
    /// Field 1: the job's number.
    pub number: i64,
    /// Field 2: submit time, seconds from the log's start.
    pub submit: i64,
    /// Field 3: wait time in the queue, seconds.
    pub wait: i64,
    /// Field 4: run time, seconds (wall clock).
    pub run: i64,
    /// Field 5: processors allocated.
    pub procs: i64,
    /// Field 8: processors requested.
    pub req_procs: i64,
    /// Field 9: time requested, seconds.
    pub req_time: i64,
    /// Field 11: status: 1 completed, 0 failed, 5 cancelled, −1 unknown.
    pub status: i64,
    /// Field 12: user.
    pub user: i64,
    /// Field 15: queue.
    pub queue: i64,
    /// Field 16: partition.
    pub partition: i64,
}

impl SwfJob {
    /// The processors it used: those allocated, else those requested; at least 1.
    pub fn cores(&self) -> u32 {
        let p = if self.procs > 0 { self.procs } else { self.req_procs };
        p.clamp(1, u32::MAX as i64) as u32
    }
}

/// A log: its jobs in file order and the partitions its header names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SwfLog {
    /// The jobs.
    pub jobs: Vec<SwfJob>,
    /// `Partition:` header lines: number and name.
    pub partitions: Vec<(i64, String)>,
}

/// A malformed log: the line (1-based; 0 for the file as a whole) and what is wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct SwfError {
    /// The line of the record, 0 if the file cannot be read.
    pub line: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Reads a log from `path`, gunzipping it if it starts with gzip's magic bytes.
pub fn read(path: &Path) -> Result<SwfLog, SwfError> {
    let fail = |e: std::io::Error| SwfError { line: 0, message: format!("cannot read {}: {e}", path.display()) };
    let raw = std::fs::read(path).map_err(fail)?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_string(&mut out).map_err(fail)?;
        out
    } else {
        String::from_utf8(raw)
            .map_err(|e| SwfError { line: 0, message: format!("{} is not text: {e}", path.display()) })?
    };
    parse(&text)
}

/// Parses a log's text.
pub fn parse(text: &str) -> Result<SwfLog, SwfError> {
    let mut log = SwfLog::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix(';') {
            if let Some(p) = header.trim().strip_prefix("Partition:") {
                let mut parts = p.split_whitespace();
                if let (Some(n), Some(name)) = (parts.next().and_then(|n| n.parse().ok()), parts.next()) {
                    log.partitions.push((n, name.to_string()));
                }
            }
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = |message: String| SwfError { line: i + 1, message };
        if fields.len() != 18 {
            return Err(bad(format!("{} fields; expected the 18 of a job record (−1 for unknown)", fields.len())));
        }
        let mut f = [0i64; 18];
        for (k, s) in fields.iter().enumerate() {
            // Average CPU time (field 6) may be fractional; the others are integers.
            f[k] = match s.parse::<i64>() {
                Ok(x) => x,
                Err(_) => match s.parse::<f64>() {
                    Ok(x) if x.is_finite() => x.round() as i64,
                    _ => return Err(bad(format!("field {} is `{s}`; expected a number", k + 1))),
                },
            };
        }
        log.jobs.push(SwfJob {
            number: f[0],
            submit: f[1],
            wait: f[2],
            run: f[3],
            procs: f[4],
            req_procs: f[7],
            req_time: f[8],
            status: f[10],
            user: f[11],
            queue: f[14],
            partition: f[15],
        });
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nasa() -> SwfLog {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/workloads/NASA-iPSC-1993-3.1-cln.swf.gz");
        read(&path).expect("the NASA log reads")
    }

    #[test]
    fn the_nasa_log_reads_field_by_field() {
        let log = nasa();
        // 42,264 records less the 24,025 the cleaning removed.
        assert_eq!(log.jobs.len(), 18_239);
        let first = log.jobs[0];
        assert_eq!((first.number, first.submit, first.wait, first.run, first.procs), (1, 0, -1, 1451, 128));
        assert_eq!(
            (first.req_procs, first.req_time, first.status, first.user, first.queue, first.partition),
            (-1, -1, -1, 1, -1, -1)
        );
        let fourth = log.jobs[3];
        assert_eq!((fourth.number, fourth.submit, fourth.run, fourth.procs, fourth.user), (4, 6269, 10927, 128, 2));
        let sixth = log.jobs[5];
        assert_eq!((sixth.number, sixth.submit, sixth.run, sixth.procs, sixth.user), (57, 25574, 10, 1, 4));
        assert!(log.jobs.windows(2).all(|w| w[0].submit <= w[1].submit));
        assert!(log.partitions.is_empty());
    }

    #[test]
    fn a_malformed_record_is_named_by_its_line() {
        let text = "; Partition: 1 grid.ici.ro\n; Partition: 2 lancs.ac.uk\n\n1 0 -1 83 1 -1 -1 -1 1200 -1 -1 1 1 -1 -1 1 -1 -1\n2 3 -1 oops 1 -1 -1 -1 1 -1 -1 1 1 -1 -1 2 -1 -1\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("field 4") && e.message.contains("oops"), "{}", e.message);
        let e = parse("1 0 -1 83 1\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("5 fields"), "{}", e.message);
        let good = parse(&text.replace("oops", "3611")).expect("good");
        assert_eq!(good.partitions, [(1, "grid.ici.ro".to_string()), (2, "lancs.ac.uk".to_string())]);
        assert_eq!((good.jobs[1].run, good.jobs[1].partition, good.jobs[0].req_time), (3611, 2, 1200));
    }
}
