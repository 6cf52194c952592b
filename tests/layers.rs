//! The crate's top-level modules import one way: each only from the layers below
//! it in ARCHITECTURE.md's diagram, so the diagram is the real import graph and no
//! two modules import each other. Test modules are left out: a test sits above
//! everything and may use any layer (the protocols' tests use `validate`'s
//! closed forms).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The layers of ARCHITECTURE.md's diagram, top first: the fenced block under
/// "## Layers", one layer a line, its modules joined by " · " before two spaces.
fn layers(root: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = text.split("## Layers").nth(1).expect("a \"## Layers\" section");
    let block = section.split("```").nth(1).expect("a fenced diagram in \"## Layers\"");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split("  ").next().unwrap_or("").split(" · ").map(|m| m.trim().to_string()).collect())
        .collect()
}

/// Non-test source of a top-level module: src/NAME.rs or every file under src/NAME/.
fn source(root: &Path, module: &str) -> String {
    let file = root.join("src").join(format!("{module}.rs"));
    let mut files = Vec::new();
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![root.join("src").join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut all = String::new();
    for f in files {
        let text = fs::read_to_string(&f).expect("readable source");
        // A module's tests are at its bottom, after `#[cfg(test)]` at column 0.
        let code = text.split("\n#[cfg(test)]\nmod ").next().unwrap_or("");
        all.push_str(code);
    }
    all
}

/// The top-level modules `module` names as `crate::X`.
fn imports(code: &str, module: &str) -> Vec<String> {
    let mut out: Vec<String> = code
        .match_indices("crate::")
        .map(|(i, m)| code[i + m.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
        .filter(|m| !m.is_empty() && m != module)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = layers(root);
    let top = layers.len();
    let level: BTreeMap<&str, usize> =
        layers.iter().enumerate().flat_map(|(i, l)| l.iter().map(move |m| (m.as_str(), top - i))).collect();
    let lib = fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs");
    let modules: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    assert!(!modules.is_empty());
    let mut wrong = Vec::new();
    for m in &modules {
        let Some(&mine) = level.get(m) else {
            wrong.push(format!("{m} is not in ARCHITECTURE.md's layer diagram"));
            continue;
        };
        for dep in imports(&source(root, m), m) {
            match level.get(dep.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(_) => wrong.push(format!("{m} imports {dep}, which is not below it")),
                None => wrong.push(format!("{m} imports {dep}, which is not in the diagram")),
            }
        }
    }
    for m in level.keys() {
        if !modules.contains(m) {
            wrong.push(format!("the diagram names {m}, which src/lib.rs does not declare"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
