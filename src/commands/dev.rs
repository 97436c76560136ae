//! `orderflow dev`: a local stack for development.

use super::Context;
use crate::cli::DevArgs;
use crate::exit::Exit;

pub async fn run(_cx: &Context, _args: DevArgs) -> anyhow::Result<Exit> {
    super::not_yet_implemented("dev")
}
