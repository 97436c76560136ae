//! The committed completions and man pages match the clap definition.
//! Regenerate with `make generate` (or `orderflow completions …` / `orderflow man --out-dir man`).

use std::path::Path;

use orderflow::cli::Shell;
use orderflow::commands::{completion_script, man_pages};

fn check(path: &Path, expected: &[u8], stale: &mut Vec<String>) {
    match std::fs::read(path) {
        Ok(actual) if actual == expected => {}
        _ => stale.push(path.display().to_string()),
    }
}

#[test]
fn committed_completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::Powershell,
    ] {
        let (name, script) = completion_script(shell);
        check(&root.join("completions").join(name), &script, &mut stale);
    }
    for (name, page) in man_pages() {
        check(&root.join("man").join(name), &page, &mut stale);
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}\nrun `make generate` to update them"
    );
}
