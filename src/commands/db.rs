//! `orderflow db migrate | status | reset`.

use std::io::{BufRead, IsTerminal};

use anyhow::Context as _;
use comfy_table::Cell;

use super::Context;
use crate::cli::{DbCommand, ResetArgs};
use crate::db::migrations::{self, MigrationStatus, State};
use crate::exit::{Exit, Fail};

pub async fn run(cx: &Context, command: DbCommand) -> anyhow::Result<Exit> {
    match command {
        DbCommand::Migrate => migrate(cx).await,
        DbCommand::Status => status(cx).await,
        DbCommand::Reset(args) => reset(cx, args).await,
    }
}

async fn migrate(cx: &Context) -> anyhow::Result<Exit> {
    let pool = cx.pool_any_schema().await?;
    let applied = migrations::migrate(&pool)
        .await
        .context("applying migrations")?;
    report_applied(cx, &applied, "applied")?;
    Ok(Exit::Success)
}

fn report_applied(cx: &Context, applied: &[MigrationStatus], verb: &str) -> anyhow::Result<()> {
    let p = &cx.printer;
    if p.is_json() {
        p.json(&serde_json::json!({ verb: applied }))?;
    } else if applied.is_empty() {
        p.line("Database schema is up to date; nothing to apply.")?;
    } else {
        for m in applied {
            p.line(format!(
                "{} {} {}",
                capitalise(verb),
                m.version,
                m.description
            ))?;
        }
    }
    Ok(())
}

fn capitalise(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

async fn status(cx: &Context) -> anyhow::Result<Exit> {
    let pool = cx.pool_any_schema().await?;
    let list = migrations::status(&pool)
        .await
        .context("reading applied migrations")?;
    let p = &cx.printer;
    if p.is_json() {
        p.json(&list)?;
    } else {
        let mut table = p.table();
        table.set_header(["VERSION", "DESCRIPTION", "STATE", "APPLIED AT"]);
        for m in &list {
            table.add_row([
                Cell::new(m.version),
                Cell::new(&m.description),
                Cell::new(match m.state {
                    State::Applied => "applied",
                    State::Pending => "pending",
                }),
                Cell::new(
                    m.applied_at
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                        .unwrap_or_default(),
                ),
            ]);
        }
        p.line(table)?;
        let pending = list.iter().filter(|m| m.state == State::Pending).count();
        if pending > 0 {
            p.note(format!(
                "{pending} pending; run `orderflow db migrate` to apply."
            ));
        }
    }
    Ok(Exit::Success)
}

/// A reset that was not confirmed changes nothing and exits 2, declined at
/// the prompt or not asked (no terminal, no `--yes`) alike: the command was
/// not given what it needs to act. Not 1: nothing unexpected happened.
const NOT_CONFIRMED: Exit = Exit::Usage;

/// The exit for an answer to the reset question: `None` to go on (the
/// answer is `yes`), else [`NOT_CONFIRMED`].
fn declined(answer: &str) -> Option<Exit> {
    (!answer.trim().eq_ignore_ascii_case("yes")).then_some(NOT_CONFIRMED)
}

async fn reset(cx: &Context, args: ResetArgs) -> anyhow::Result<Exit> {
    let database = cx.database()?;
    if !args.yes {
        let question = format!(
            "This drops every table in {} and re-applies the schema; all orders and products are lost.",
            database.redacted()
        );
        if !std::io::stdin().is_terminal() || cx.printer.is_json() {
            return Err(Fail::new(
                NOT_CONFIRMED,
                format!("{question} Refusing without --yes when not asking at a terminal."),
            )
            .into());
        }
        eprint!("{question}\nType 'yes' to continue: ");
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("reading the answer")?;
        if let Some(exit) = declined(&answer) {
            cx.printer
                .note("Not confirmed; nothing was changed. (`--yes` skips the question.)");
            return Ok(exit);
        }
    }
    let pool = crate::db::connect(&database, 2).await?;
    let applied = migrations::reset(&pool)
        .await
        .context("resetting the database")?;
    report_applied(cx, &applied, "reapplied")?;
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_resets_and_a_decline_is_not_an_unexpected_error() {
        assert_eq!(declined("yes\n"), None);
        assert_eq!(declined(" YES \n"), None);
        for answer in ["no\n", "\n", "", "y\n", "yes please\n"] {
            assert_eq!(declined(answer), Some(Exit::Usage), "{answer:?}");
        }
    }
}
