//! The layers of `src/` point one way (DOCS.md, Architecture): read every
//! module's `crate::…` paths, outside its tests, and check the graph of
//! top-level modules has no cycle, the leaves know nothing, and the SDK's
//! client stays behind `temporal` and `workflow`.

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

#[test]
fn the_sdk_client_stays_behind_temporal_and_workflow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    let mut files = vec![src];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("temporalio_client"),
                "{} names the SDK's client; use temporal::client::OrderClient",
                path.display()
            );
        }
    }
}
