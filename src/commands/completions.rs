//! `orderflow completions SHELL`: generated from the clap definition.

use clap::CommandFactory;
use clap_complete::Shell as Target;

use super::Context;
use crate::cli::{Cli, CompletionsArgs, Shell};
use crate::exit::Exit;

/// The completion script for a shell, exactly as committed under `completions/`.
pub fn completion_script(shell: Shell) -> (String, Vec<u8>) {
    let target = match shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
        Shell::Elvish => Target::Elvish,
        Shell::Powershell => Target::PowerShell,
    };
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(target, &mut command, "orderflow", &mut script);
    let file_name = match shell {
        Shell::Bash => "orderflow.bash",
        Shell::Zsh => "_orderflow",
        Shell::Fish => "orderflow.fish",
        Shell::Elvish => "orderflow.elv",
        Shell::Powershell => "_orderflow.ps1",
    };
    (file_name.to_owned(), script)
}

pub fn run(cx: &Context, args: CompletionsArgs) -> anyhow::Result<Exit> {
    let (_, script) = completion_script(args.shell);
    cx.printer.raw(&script)?;
    Ok(Exit::Success)
}
