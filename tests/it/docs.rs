//! The docs cannot rot: every command example in README.md and DOCS.md
//! parses with the real command line, every file it names exists, every
//! `make` target it names is in the Makefile, and every example order file
//! is valid. (The integration tests run the commands themselves.)

use std::path::Path;

use clap::Parser;
use orderflow::cli::Cli;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fenced blocks of `lang` in a Markdown file.
fn blocks(file: &str, lang: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(tag)) if tag.trim() == lang => current = Some(String::new()),
            (Some(_), Some("")) => out.push(current.take().unwrap()),
            (Some(block), None) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// Command lines of the shell examples: continuations joined, comments,
/// redirections and pipes removed.
fn commands(file: &str) -> Vec<Vec<String>> {
    blocks(file, "sh")
        .iter()
        .flat_map(|b| {
            b.replace("\\\n", " ")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| {
            let words = shell_words::split(&line).unwrap_or_else(|e| panic!("{file}: {line}: {e}"));
            let words: Vec<String> = words
                .into_iter()
                .take_while(|w| {
                    !w.starts_with('#')
                        && !matches!(w.as_str(), ">" | ">>" | "<" | "|" | "&&" | "2>")
                })
                .collect();
            (!words.is_empty()).then_some(words)
        })
        .collect()
}

fn make_targets() -> Vec<String> {
    std::fs::read_to_string(repo().join("Makefile"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .filter(|(t, _)| !t.contains(' ') && !t.starts_with('.') && !t.starts_with('\t'))
        })
        .map(|(t, _)| t.to_owned())
        .collect()
}

#[test]
fn every_documented_command_is_real() {
    let targets = make_targets();
    let mut checked = 0;
    for file in ["README.md", "DOCS.md"] {
        for words in commands(file) {
            let line = words.join(" ");
            match words[0].as_str() {
                "orderflow" | "target/release/orderflow" => {
                    Cli::try_parse_from(&words)
                        .unwrap_or_else(|e| panic!("{file}: `{line}` does not parse:\n{e}"));
                    for path in words.iter().filter(|w| w.starts_with("examples/")) {
                        assert!(
                            repo().join(path).exists(),
                            "{file}: `{line}` names missing {path}"
                        );
                    }
                }
                "make" => {
                    for target in &words[1..] {
                        assert!(
                            targets.contains(target),
                            "{file}: `{line}`: no make target {target}"
                        );
                    }
                }
                // The bench scripts exist.
                "python3" => {
                    let script = words.get(1).expect("python3 SCRIPT");
                    assert!(
                        repo().join(script).exists(),
                        "{file}: `{line}` names missing {script}"
                    );
                }
                // Other tools' commands: the Temporal CLI, Docker, cargo, pip, the shell.
                "temporal" | "docker" | "cargo" | "pip" | "export" | "cp" | "curl" | "printf"
                | "chmod" => {}
                other => panic!("{file}: `{line}`: unknown command {other}; check it here"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} example commands found");
}

#[test]
fn every_example_order_is_valid() {
    let mut sources = Vec::new();
    for file in ["README.md", "DOCS.md"] {
        for (i, block) in blocks(file, "json").into_iter().enumerate() {
            if block.contains("\"customerID\"")
                && block.contains("\"items\"")
                && !block.contains("\"orderId\"")
            {
                sources.push(orderflow::input::Source::new(
                    format!("{file} json block {i}"),
                    block,
                ));
            }
        }
    }
    for entry in std::fs::read_dir(repo().join("examples/orders")).unwrap() {
        sources.push(orderflow::input::Source::read(&entry.unwrap().path()).unwrap());
    }
    sources.push(orderflow::input::Source::read(&repo().join("examples/order.json")).unwrap());
    assert!(sources.len() >= 6);
    for source in &sources {
        orderflow::input::parse_orders(std::slice::from_ref(source), None)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let catalog = orderflow::input::Source::read(&repo().join("examples/catalog.json")).unwrap();
    orderflow::input::parse_catalog(&catalog).unwrap();
}

/// DOCS.md's API reference, made from the OpenAPI document `serve` serves.
fn api_reference() -> String {
    let out = crate::support::orderflow()
        .args(["serve", "--openapi"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut text = String::from(
        "<!-- api-reference: generated from `orderflow serve --openapi`; tests/it/docs.rs keeps it so -->\n",
    );
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            text += &format!("\n#### `{} {path}`\n\n", method.to_uppercase());
            if let Some(summary) = op["summary"].as_str() {
                text += &format!("{summary}\n\n");
            }
            text += "| status | body | when |\n|---|---|---|\n";
            for (status, response) in op["responses"].as_object().unwrap() {
                let body = response["content"]
                    .as_object()
                    .and_then(|c| c.values().next())
                    .map(|c| {
                        let schema = &c["schema"];
                        let name = |s: &serde_json::Value| {
                            s["$ref"]
                                .as_str()
                                .map(|r| r.rsplit('/').next().unwrap().to_owned())
                        };
                        match (name(schema), name(&schema["items"])) {
                            (Some(n), _) => format!("`{n}`"),
                            (None, Some(n)) => format!("`[{n}]`"),
                            _ => "JSON".to_owned(),
                        }
                    })
                    .unwrap_or_else(|| "—".to_owned());
                let when = response["description"]
                    .as_str()
                    .unwrap_or("")
                    .replace('|', "\\|");
                text += &format!("| {status} | {body} | {when} |\n");
            }
        }
    }
    text += "\n<!-- api-reference: end -->\n";
    text
}

#[test]
fn the_api_reference_is_the_served_document() {
    let docs = std::fs::read_to_string(repo().join("DOCS.md")).unwrap();
    let expected = api_reference();
    let start = docs
        .find("<!-- api-reference: generated")
        .expect("DOCS.md has the API reference");
    let end = docs
        .find("<!-- api-reference: end -->")
        .expect("the reference ends")
        + "<!-- api-reference: end -->\n".len();
    if docs[start..end] != expected {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(
                repo().join("DOCS.md"),
                format!("{}{expected}{}", &docs[..start], &docs[end..]),
            )
            .unwrap();
        }
        panic!(
            "DOCS.md's API reference differs from the served document; run `UPDATE_DOCS=1 cargo test --test it docs::` to rewrite it:\n{expected}"
        );
    }
}
