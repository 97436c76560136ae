//! `orderflow man`: man pages generated from the clap definition.

use anyhow::Context as _;
use clap::CommandFactory;

use super::Context;
use crate::cli::{Cli, ManArgs};
use crate::exit::Exit;

/// Every man page — `orderflow.1`, `orderflow-order-create.1`, … — as
/// (file name, contents), exactly as committed under `man/`.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut pages = Vec::new();
    render(
        Cli::command().version(env!("CARGO_PKG_VERSION")),
        "orderflow",
        &mut pages,
    );
    pages
}

fn render(command: clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let command = command
        .name(name.to_owned())
        .bin_name(name.replace('-', " "));
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .expect("rendering into memory cannot fail");
    pages.push((format!("{name}.1"), page));
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        render(sub.clone(), &format!("{name}-{}", sub.get_name()), pages);
    }
}

pub fn run(cx: &Context, args: ManArgs) -> anyhow::Result<Exit> {
    let pages = man_pages();
    match args.out_dir {
        None => cx.printer.raw(&pages[0].1)?,
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, page) in &pages {
                let path = dir.join(name);
                std::fs::write(&path, page)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            cx.printer.note(format!(
                "Wrote {} man pages to {}.",
                pages.len(),
                dir.display()
            ));
        }
    }
    Ok(Exit::Success)
}
