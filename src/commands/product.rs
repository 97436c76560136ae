//! `orderflow product import | list`.

use anyhow::Context as _;
use comfy_table::{Cell, CellAlignment};

use super::Context;
use crate::cli::{ImportArgs, ProductCommand};
use crate::db::products;
use crate::exit::Exit;
use crate::input::{Source, parse_catalog};

pub async fn run(cx: &Context, command: ProductCommand) -> anyhow::Result<Exit> {
    match command {
        ProductCommand::Import(args) => import(cx, args).await,
        ProductCommand::List => list(cx).await,
    }
}

async fn import(cx: &Context, args: ImportArgs) -> anyhow::Result<Exit> {
    let source = Source::read(&args.file)?;
    let catalog = parse_catalog(&source)?;
    let pool = cx.pool().await?;
    let counts = products::upsert_all(&pool, &catalog)
        .await
        .with_context(|| format!("importing {} into the catalog", source.name))?;
    let p = &cx.printer;
    if p.is_json() {
        p.json(&serde_json::json!({
            "file": source.name,
            "products": catalog.len(),
            "inserted": counts.inserted,
            "updated": counts.updated,
        }))?;
    } else {
        p.line(format!(
            "Imported {} product(s) from {}: {} new, {} updated.",
            catalog.len(),
            source.name,
            counts.inserted,
            counts.updated
        ))?;
    }
    Ok(Exit::Success)
}

async fn list(cx: &Context) -> anyhow::Result<Exit> {
    let pool = cx.pool().await?;
    let catalog = products::list(&pool).await.context("reading the catalog")?;
    let p = &cx.printer;
    if p.is_json() {
        p.json(&catalog)?;
        return Ok(Exit::Success);
    }
    if catalog.is_empty() {
        p.note("The catalog is empty; add products with `orderflow product import --file catalog.json`.");
        return Ok(Exit::Success);
    }
    let mut table = p.table();
    table.set_header(["PRODUCT", "NAME", "UNIT PRICE", "STOCK"]);
    for product in &catalog {
        table.add_row([
            Cell::new(&product.id),
            Cell::new(&product.name),
            Cell::new(product.unit_price).set_alignment(CellAlignment::Right),
            Cell::new(product.stock).set_alignment(CellAlignment::Right),
        ]);
    }
    p.line(table)?;
    Ok(Exit::Success)
}
