//! Finds the line of a key path in the scenario text, so that errors found after
//! parsing (wrong type, value out of range) can still point at a line.

use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    /// A table key, with its quotes removed.
    Key(String),
    /// A position in an array, written `[n]`.
    Index(usize),
}

/// Splits `a.b[2].c` (quotes allowed around keys: `sweep."workload.rate"`).
pub fn split_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    let mut quoted = false;
    let flush = |cur: &mut String, out: &mut Vec<Seg>| {
        if !cur.is_empty() {
            out.push(Seg::Key(std::mem::take(cur)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => flush(&mut cur, &mut out),
            '[' if !quoted => {
                flush(&mut cur, &mut out);
                let mut num = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    num.push(d);
                }
                if let Ok(i) = num.parse() {
                    out.push(Seg::Index(i));
                }
            }
            _ => cur.push(c),
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// 1-based line of byte offset `at`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The line where the deepest existing prefix of `path` is written, if any.
pub fn locate(text: &str, path: &[Seg]) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut table: Option<&DeTable> = Some(doc.get_ref());
    let mut value: Option<&DeValue> = None;
    let mut found: Option<usize> = None;
    for seg in path {
        let next = match (seg, table, value) {
            (Seg::Key(k), Some(t), _) => {
                t.iter().find(|(key, _)| key.get_ref() == k).map(|(key, v)| (key.span().start, v))
            }
            (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i).map(|v| (v.span().start, v)),
            _ => None,
        };
        let Some((at, v)) = next else { break };
        found = Some(line_of(text, at));
        value = Some(v.get_ref());
        table = match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_inline_tables_and_arrays() {
        let text = "name = \"x\"\n[network]\nnodes = 5\ntopology = { kind = \"ring\" }\n\n[[plot]]\nx = \"a\"\n[[plot]]\ny = \"b\"\n[sweep]\n\"workload.rate\" = [1, 2]\n";
        assert_eq!(locate(text, &split_path("network.nodes")), Some(3));
        assert_eq!(locate(text, &split_path("network.topology.kind")), Some(4));
        assert_eq!(locate(text, &split_path("network.missing")), Some(2));
        assert_eq!(locate(text, &split_path("plot[1].y")), Some(9));
        assert_eq!(locate(text, &split_path("sweep.\"workload.rate\"")), Some(11));
        assert_eq!(locate(text, &split_path("nothing")), None);
    }
}
