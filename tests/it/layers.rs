//! The layers of `src/` point one way (DOCS.md, Architecture): read every
//! file's `crate::…` and `super::…` paths, outside its tests, and check
//! that neither the top-level modules nor the files form a circle, the
//! leaves know nothing, and no `tonic` or `temporalio_*` path appears
//! outside `temporal/`, `worker/` and `workflow/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code names.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "main" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let uses = graph.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                uses.insert(name);
            }
        }
    }
    graph
}

/// A cycle through `from`, if any, as the path that closes it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        let last = path.last().unwrap().clone();
        for next in graph.get(&last).into_iter().flatten() {
            if next == &path[0] {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if let Some(cycle) = walk(graph, path, seen) {
                    return Some(cycle);
                }
                path.pop();
            }
        }
        None
    }
    walk(graph, &mut vec![from.to_owned()], &mut BTreeSet::new())
}

#[test]
fn modules_form_no_cycle() {
    let graph = dependencies();
    assert!(graph.len() > 5, "found the modules: {graph:?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            panic!("an import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_leaves_know_no_other_module() {
    let graph = dependencies();
    for leaf in ["domain", "errors", "exit"] {
        assert_eq!(graph[leaf], BTreeSet::new(), "{leaf} is a leaf");
    }
    assert!(
        !graph["config"].contains("cli"),
        "config does not know the CLI"
    );
}

/// Every source file, as its path under `src/`, with its code outside tests.
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let relative = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            found.push((relative, code));
        }
    }
    found.sort();
    found
}

/// The module path of a file: `temporal/client.rs` → `[temporal, client]`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The paths a piece of code names after `prefix` (`crate::` or `super::`,
/// repeated for `super::super::`), with one level of `{…}` spelled out.
fn paths_after(code: &str, prefix: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut rest = &code[i..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix(prefix) {
            ups += 1;
            rest = r;
        }
        let head: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segments: Vec<String> = head
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let after = &rest[head.len()..];
        if head.ends_with("::") && after.starts_with('{') {
            let inner = &after[1..after.find('}').unwrap_or(after.len())];
            for item in inner.split(',') {
                let mut path = segments.clone();
                path.extend(
                    item.trim()
                        .split("::")
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty() && !s.contains(' ') && s != "self"),
                );
                found.push((ups, path));
            }
        } else {
            found.push((ups, segments));
        }
    }
    found
}

/// The file a module path lands in: its longest prefix that is a file.
fn file_of(files: &BTreeSet<String>, path: &[String]) -> Option<String> {
    (0..=path.len()).rev().find_map(|n| {
        let base = path[..n].join("/");
        let candidates = if n == 0 {
            vec!["lib.rs".to_owned()]
        } else {
            vec![format!("{base}.rs"), format!("{base}/mod.rs")]
        };
        candidates.into_iter().find(|c| files.contains(c))
    })
}

/// File → the files its `crate::` and `super::` paths name.
fn file_graph() -> BTreeMap<String, BTreeSet<String>> {
    let sources = sources();
    let files: BTreeSet<String> = sources.iter().map(|(f, _)| f.clone()).collect();
    let mut graph = BTreeMap::new();
    for (file, code) in &sources {
        let module = module_of(file);
        let mut uses = BTreeSet::new();
        for (_, path) in paths_after(code, "crate::") {
            uses.extend(file_of(&files, &path));
        }
        for (ups, path) in paths_after(code, "super::") {
            let Some(keep) = module.len().checked_sub(ups) else {
                continue;
            };
            let mut full = module[..keep].to_vec();
            full.extend(path);
            uses.extend(file_of(&files, &full));
        }
        uses.remove(file);
        uses.remove("lib.rs");
        graph.insert(file.clone(), uses);
    }
    graph
}

#[test]
fn files_form_no_circle() {
    let graph = file_graph();
    assert!(
        graph["temporal/client.rs"].contains("temporal/query.rs"),
        "reads super:: paths: {:?}",
        graph["temporal/client.rs"]
    );
    assert!(
        graph["temporal/client.rs"].contains("workflow/signals.rs"),
        "reads crate:: paths: {:?}",
        graph["temporal/client.rs"]
    );
    for file in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, file) {
            panic!("files import each other: {}", cycle.join(" → "));
        }
    }
}

/// Where the SDK's types may be named: the boundary, and what hosts and
/// replays the workflow.
const SDK_FOLDERS: [&str; 3] = ["temporal/", "worker/", "workflow/"];

#[test]
fn the_sdk_stays_behind_temporal_worker_and_workflow() {
    let mut named = 0;
    for (file, code) in sources() {
        let sdk = code.contains("tonic::")
            || code.contains("use tonic")
            || code.match_indices("temporalio_").any(|(i, _)| {
                let rest = &code[i..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                rest[name.len()..].starts_with("::")
            });
        if SDK_FOLDERS.iter().any(|f| file.starts_with(f)) {
            named += usize::from(sdk);
        } else {
            assert!(
                !sdk,
                "src/{file} names tonic or a temporalio_* crate; only temporal/, worker/ and \
                 workflow/ may: reach Temporal through temporal::client::OrderClient"
            );
        }
    }
    assert!(
        named > 5,
        "the check sees the SDK where it is: {named} files"
    );
}
