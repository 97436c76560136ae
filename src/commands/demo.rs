//! `orderflow demo`: the sample orders on a local stack.

use super::Context;
use crate::cli::DemoArgs;
use crate::exit::Exit;

pub async fn run(_cx: &Context, _args: DemoArgs) -> anyhow::Result<Exit> {
    super::not_yet_implemented("demo")
}
