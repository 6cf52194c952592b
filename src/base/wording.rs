//! serde's errors in plain words: the key path where reading failed, and what was
//! found and expected, without Rust type names.

/// A value that is wrong: its key path below the table it was read from (empty for
/// the table itself) and what was wrong, in plain words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct KeyError {
    /// Dotted key path, e.g. `topology.degree`.
    pub key: String,
    /// What was found and what was expected.
    pub message: String,
}

impl KeyError {
    /// An error about key `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> KeyError {
        KeyError { key: key.into(), message: message.into() }
    }
}

/// A serde error met while reading `value`, as the key path below `value` (empty
/// for `value` itself) and a message in plain words: no Rust type names, and
/// "unknown key" / "missing key" rather than serde's "field".
pub fn from_serde(e: &serde_path_to_error::Error<toml::de::Error>, value: &toml::Value) -> KeyError {
    let mut path = e.path().to_string();
    if path == "." {
        path.clear();
    }
    // The toml error repeats the path on a line of its own ("in `network`").
    let full = e.inner().to_string();
    let raw = full.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    // An unknown key of a table read by tag (`kind`, `model`) is named only in the message.
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let parent = path.clone();
        if path.rsplit('.').next() != Some(field) {
            path = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
        }
        let tail = tail.trim_start_matches(',').trim();
        let message = if tail == "there are no fields" {
            match tag_of(value, &parent) {
                Some((tag, name)) => format!("unknown key `{field}`: {tag} \"{name}\" takes no other keys"),
                None => format!("unknown key `{field}`: this table takes no keys"),
            }
        } else if tail.is_empty() {
            format!("unknown key `{field}`")
        } else {
            format!("unknown key `{field}`; {tail}")
        };
        return KeyError { key: path, message };
    }
    // toml reads a name (an enum) from anything but a string without saying what it found.
    if raw == "invalid type: unit variant, expected string only"
        && let Some(found) = value_at(value, &path)
    {
        return KeyError { key: path, message: format!("found {}; expected a name in quotes", describe(found)) };
    }
    // A table read by tag (`kind`, `model`) is named as the place of a wrong value
    // inside it: name the key that holds the value instead.
    if (raw.starts_with("invalid type: ") || raw.starts_with("invalid value: "))
        && let Some(child) = child_holding(value_at(value, &path), raw)
    {
        path = if path.is_empty() { child } else { format!("{path}.{child}") };
    }
    KeyError { key: path, message: plain(raw) }
}

/// The one key of `table` whose scalar value is the one serde's `raw` message
/// says it found.
fn child_holding(table: Option<&toml::Value>, raw: &str) -> Option<String> {
    let table = table?.as_table()?;
    let found = raw.split_once(": ")?.1.rsplit_once(", expected ")?.0;
    let mut keys = table.iter().filter(|(_, v)| match v {
        toml::Value::String(s) => found == format!("string {s:?}"),
        toml::Value::Integer(i) => found == format!("integer `{i}`"),
        toml::Value::Float(f) => found == format!("floating point `{f}`"),
        toml::Value::Boolean(b) => found == format!("boolean `{b}`"),
        _ => false,
    });
    let (key, _) = keys.next()?;
    keys.next().is_none().then(|| key.clone())
}

fn value_at<'v>(value: &'v toml::Value, path: &str) -> Option<&'v toml::Value> {
    let mut v = value;
    for seg in super::locate::split_path(path) {
        v = match seg {
            super::locate::Seg::Key(k) => v.as_table()?.get(&k)?,
            super::locate::Seg::Index(i) => v.as_array()?.get(i)?,
        };
    }
    Some(v)
}

/// "the integer 3", "a list": what a value is, for "found ..." messages.
fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(f) => format!("the number {f}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => format!("the date {d}"),
        toml::Value::Array(_) => "a list".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// The tag (`kind = "ring"`, `model = "constant"`) of the table at `path` in `value`.
fn tag_of(value: &toml::Value, path: &str) -> Option<(&'static str, String)> {
    let t = value_at(value, path)?.as_table()?;
    ["kind", "model", "dist"].into_iter().find_map(|tag| Some((tag, t.get(tag)?.as_str()?.to_string())))
}

/// Rewrites serde's wording ("invalid type: string \"abc\", expected u32") in
/// plain words ("found the string \"abc\"; expected a non-negative integer").
pub fn plain(message: &str) -> String {
    let m = message.trim();
    if let Some(rest) = m.strip_prefix("missing field ") {
        return format!("missing key {rest}");
    }
    if let Some(rest) = m.strip_prefix("unknown variant ") {
        let (value, tail) = rest.split_once(", ").unwrap_or((rest, ""));
        return if tail.is_empty() {
            format!("unknown value {value}")
        } else {
            format!("unknown value {value}; {tail}")
        };
    }
    for (prefix, range) in [("invalid type: ", false), ("invalid value: ", true)] {
        let Some(rest) = m.strip_prefix(prefix) else { continue };
        let Some((found, expected)) = rest.rsplit_once(", expected ") else { continue };
        let found = found_in_words(found);
        // A negative value is wrong for its sign, not for the type's upper bound.
        let negative = found.starts_with("the integer -");
        let bound = if expected == "u32" && !negative { " no larger than 4294967295" } else { "" };
        let expected = expected_in_words(expected);
        return if range && found.starts_with("the integer") {
            format!("{found} is out of range; expected {expected}{bound}")
        } else {
            format!("found {found}; expected {expected}")
        };
    }
    m.to_string()
}

fn found_in_words(found: &str) -> String {
    let unquote = |s: &str| s.trim_matches('`').to_string();
    if let Some(s) = found.strip_prefix("string ") {
        format!("the string {s}")
    } else if let Some(i) = found.strip_prefix("integer ") {
        format!("the integer {}", unquote(i))
    } else if let Some(f) = found.strip_prefix("floating point ") {
        format!("the number {}", unquote(f))
    } else if let Some(b) = found.strip_prefix("boolean ") {
        unquote(b)
    } else {
        match found {
            "sequence" => "a list".into(),
            "map" => "a table".into(),
            other => other.into(),
        }
    }
}

fn expected_in_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "usize" | "u64" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a map" => "a table".into(),
        "string only" | "a borrowed string" => "a string".into(),
        "internally tagged enum TopologySpec" => "a table such as { kind = \"random-regular\", degree = 4 }".into(),
        "internally tagged enum LatencySpec" => "a table such as { model = \"constant\", value = \"20ms\" }".into(),
        e if e.starts_with("struct ") || e.starts_with("internally tagged enum ") => "a table".into(),
        e if e.starts_with("enum ") => "one of the names `peergrid list` shows".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_wording_becomes_plain() {
        assert_eq!(
            plain("invalid type: string \"abc\", expected u32"),
            "found the string \"abc\"; expected a non-negative integer"
        );
        assert_eq!(
            plain("invalid value: integer `-1`, expected u64"),
            "the integer -1 is out of range; expected a non-negative integer"
        );
        assert_eq!(
            plain("invalid type: integer `3`, expected struct NetworkSpec"),
            "found the integer 3; expected a table"
        );
        assert_eq!(plain("invalid type: boolean `true`, expected f64"), "found true; expected a number");
        assert_eq!(plain("invalid type: integer `3`, expected a sequence"), "found the integer 3; expected a list");
        assert_eq!(plain("missing field `kind`"), "missing key `kind`");
        assert_eq!(
            plain("unknown variant `x`, expected one of `a`, `b`"),
            "unknown value `x`; expected one of `a`, `b`"
        );
        assert_eq!(plain("3 has no unit; expected a duration"), "3 has no unit; expected a duration");
    }

    #[test]
    fn an_unknown_key_of_a_tagged_table_names_the_tag() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
        #[allow(dead_code)]
        enum Shape {
            Ring {},
            RandomRegular { degree: u32 },
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            topology: Shape,
        }
        let value: toml::Value = toml::from_str("topology = { kind = \"ring\", degree = 4 }").unwrap();
        let e = serde_path_to_error::deserialize::<_, Outer>(value.clone()).unwrap_err();
        let err = from_serde(&e, &value);
        assert_eq!(err.key, "topology.degree");
        assert_eq!(err.message, "unknown key `degree`: kind \"ring\" takes no other keys");
    }
}
