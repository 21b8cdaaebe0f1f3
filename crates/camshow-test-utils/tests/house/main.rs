//! House rules that keep the workspace's shape: crates depend one way only
//! (core ← media ← front ends), and no two modules of a crate import each
//! other, directly or through others.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The layer of each workspace crate: a crate may depend only on lower layers.
fn layer(name: &str) -> Option<u32> {
    match name {
        "camshow-core" => Some(0),
        "camshow-media" => Some(1),
        // Front ends: libraries over core and media.
        "camshow-server" | "camshow-desktop" | "camshow-py" => Some(2),
        // The `camshow` binary hosts them (`camshow serve`, `camshow ui`).
        "camshow-cli" => Some(3),
        _ => None,
    }
}

/// `cargo metadata` of the workspace's own packages.
fn metadata() -> serde_json::Value {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn crates_depend_one_way_only() {
    let meta = metadata();
    let mut checked = 0;
    for pkg in meta["packages"].as_array().unwrap() {
        let name = pkg["name"].as_str().unwrap();
        let own = layer(name);
        assert!(
            own.is_some() || name == "camshow-test-utils",
            "{name} is not placed in a layer: add it to `layer` in this test"
        );
        for dep in pkg["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            if !dep_name.starts_with("camshow-") {
                continue;
            }
            let dev = dep["kind"].as_str() == Some("dev");
            if dep_name == "camshow-test-utils" {
                assert!(
                    dev,
                    "{name} depends on camshow-test-utils outside its tests"
                );
                continue;
            }
            if dev {
                continue;
            }
            if name == "camshow-test-utils" {
                assert_eq!(
                    dep_name, "camshow-core",
                    "test utilities build on core only"
                );
                continue;
            }
            let (Some(a), Some(b)) = (own, layer(dep_name)) else {
                panic!("{name} → {dep_name}: a crate outside the layers");
            };
            assert!(
                b < a,
                "{name} (layer {a}) depends on {dep_name} (layer {b}): arrows point core ← media ← front ends ← the camshow binary"
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} workspace dependencies seen");
}

/// Top-level module of a source file (`src/process/masks.rs` → `process`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let m = first.trim_end_matches(".rs");
    (m != "lib" && m != "main").then(|| m.to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Module → modules it refers to through `crate::` paths (outside tests).
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let Some(from) = module_of(src, &f) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests may reach anywhere: only the code before them counts.
        let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
        // Comments and docs mention modules without importing them.
        let code: String = before_tests
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let code = code.as_str();
        let entry = graph.entry(from.clone()).or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let qualified =
                rest[name.len()..].starts_with("::") || rest[name.len()..].starts_with(';');
            if qualified
                && !name.is_empty()
                && name != from
                && name.chars().next().is_some_and(char::is_lowercase)
            {
                entry.insert(name);
            }
        }
        // `use crate::{a, b::c}` groups.
        let mut rest = code;
        while let Some(i) = rest.find("use crate::{") {
            rest = &rest[i + "use crate::{".len()..];
            let group = &rest[..rest.find("};").unwrap_or(0)];
            let mut depth = 0;
            let mut token = String::new();
            for c in group.chars().chain(std::iter::once(',')) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let name = token
                            .trim()
                            .split("::")
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        if !name.is_empty()
                            && name != from
                            && name.chars().next().is_some_and(char::is_lowercase)
                        {
                            entry.insert(name);
                        }
                        token.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 || c != ',' {
                    token.push(c);
                }
            }
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = visit(n, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_module_imports_cycle_back_to_itself() {
    for krate in ["camshow-core", "camshow-media", "camshow-cli"] {
        let src = workspace().join("crates").join(krate).join("src");
        let graph = imports(&src);
        assert!(
            graph.len() > 3,
            "{krate}: only {} modules read",
            graph.len()
        );
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: modules import each other: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}

/// The gate's test marker (`camshow-core/test-marker`, which makes marked
/// pictures unsafe too) exists for tests only: the build of every shipped
/// binary — each front end with its normal dependencies, as `cargo build
/// --release` resolves it — must not have it, and only camshow-test-utils (a
/// dev-dependency everywhere, checked above) may turn it on.
#[test]
fn the_test_marker_never_reaches_a_shipped_binary() {
    let meta = metadata();
    let mut front_ends = 0;
    for pkg in meta["packages"].as_array().unwrap() {
        let name = pkg["name"].as_str().unwrap();
        // No feature list of any crate (defaults included) turns it on.
        for (feature, enables) in pkg["features"].as_object().unwrap() {
            assert!(
                !enables
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e.as_str().unwrap().contains("test-marker")),
                "{name}'s feature {feature} enables the test marker"
            );
        }
        for dep in pkg["dependencies"].as_array().unwrap() {
            let marker = dep["features"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "test-marker");
            assert!(
                !marker || name == "camshow-test-utils",
                "{name} turns on the test marker through {}",
                dep["name"]
            );
        }
        if layer(name) != Some(2) {
            continue;
        }
        front_ends += 1;
        let tree = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-p",
                name,
                "-e",
                "normal,features",
                "--prefix",
                "none",
            ])
            .current_dir(workspace())
            .output()
            .unwrap();
        assert!(
            tree.status.success(),
            "{}",
            String::from_utf8_lossy(&tree.stderr)
        );
        let tree = String::from_utf8_lossy(&tree.stdout);
        assert!(tree.contains("camshow-core"), "{tree}");
        assert!(
            !tree.contains("\"test-marker\""),
            "the shipped build of {name} has the test marker"
        );
    }
    assert!(front_ends >= 1);
    // The Python wheel the setup builds (target/wheels) is the shipped
    // build: its extension must not know the marker's label. (The test
    // wheel, built with the marker for pytest, goes to target/test-wheel.)
    let wheels = workspace().join("target/wheels");
    for w in std::fs::read_dir(&wheels).into_iter().flatten().flatten() {
        let path = w.path();
        if path.extension().is_some_and(|e| e == "whl") {
            let so = Command::new("unzip")
                .args(["-p"])
                .arg(&path)
                .arg("camshow_deepfaker/_native*")
                .output()
                .unwrap();
            assert!(
                so.status.success() && so.stdout.len() > 1 << 20,
                "{}",
                path.display()
            );
            let label = camshow_core::safety::test_marker::LABEL.as_bytes();
            assert!(
                !so.stdout.windows(label.len()).any(|w| w == label),
                "the shipped wheel {} has the test marker",
                path.display()
            );
        }
    }
    // The fuzz harness builds the library too.
    let fuzz = std::fs::read_to_string(workspace().join("fuzz/Cargo.toml")).unwrap();
    assert!(!fuzz.contains("test-marker"));
}

/// Every lock file in the repository (the workspace's and the fuzz
/// harness's, a workspace of its own) matches its manifests: the setup and
/// the fuzz run build with `--locked`, so a dependency added to a crate
/// without the other lock file brought up to date fails here, in the first
/// minutes of the test run, not at its very end.
#[test]
fn every_lock_file_is_up_to_date() {
    for manifest in ["Cargo.toml", "fuzz/Cargo.toml"] {
        let out = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--locked", "--offline"])
            .arg("--manifest-path")
            .arg(workspace().join(manifest))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{manifest}: its Cargo.lock is out of date (run `cargo metadata --offline --manifest-path {manifest}` and commit the lock file): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
