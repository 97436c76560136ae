//! `orderflow man`: man pages generated from the clap definition, with the
//! EXAMPLES, EXIT STATUS and ENVIRONMENT of each command's help page.

use anyhow::Context as _;

use super::Context;
use crate::cli::ManArgs;
use crate::exit::Exit;

/// Every man page — `orderflow.1`, `orderflow-order-create.1`, … — as
/// (file name, contents), exactly as committed under `man/`.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut pages = Vec::new();
    let command = crate::cli::command().version(env!("CARGO_PKG_VERSION"));
    render(&command, "", &mut pages);
    pages
}

fn render(command: &clap::Command, path: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let name = if path.is_empty() {
        "orderflow".to_owned()
    } else {
        format!("orderflow-{}", path.replace(' ', "-"))
    };
    // `help` has no page of its own: `orderflow help X` is `orderflow X --help`.
    let shown = command
        .clone()
        .name(name.clone())
        .bin_name(format!("orderflow {path}").trim_end().to_owned())
        .mut_subcommands(|sub| {
            if sub.get_name() == "help" {
                sub.hide(true)
            } else {
                sub
            }
        });
    let man = clap_mangen::Man::new(shown.clone());
    let mut page = Vec::new();
    let write = |page: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(page)?;
        man.render_name_section(page)?;
        man.render_synopsis_section(page)?;
        man.render_description_section(page)?;
        if shown.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(page)?;
        }
        if shown.get_subcommands().any(|s| !s.is_hide_set()) {
            man.render_subcommands_section(page)?;
        }
        if let Some(help) = crate::cli::help::page(path) {
            page.extend_from_slice(help.man_sections(&shown).as_bytes());
        }
        man.render_version_section(page)
    };
    write(&mut page).expect("rendering into memory cannot fail");
    pages.push((format!("{name}.1"), page));
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let sub_path = format!("{path} {}", sub.get_name()).trim_start().to_owned();
        render(sub, &sub_path, pages);
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
