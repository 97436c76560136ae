//! Reaching Temporal: a real dev server, and none.

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{closed_port, orderflow, temporal_address};

#[tokio::test]
async fn connects_to_a_real_dev_server() {
    let config = orderflow::temporal::TemporalConfig::plain(temporal_address(), "orderflow");
    orderflow::temporal::client::OrderClient::connect(&config)
        .await
        .expect("connects to the dev server");
}

#[tokio::test]
async fn a_command_exits_8_when_temporal_is_unreachable() {
    let address = format!("127.0.0.1:{}", closed_port());
    orderflow()
        .args(["order", "status", "ORD-1", "--address", &address])
        .assert()
        .code(8)
        .stderr(contains(format!("cannot reach Temporal at {address}")));
}

#[tokio::test]
async fn the_seed_temporal_host_port_variable_is_honoured() {
    let address = format!("127.0.0.1:{}", closed_port());
    orderflow()
        .args(["order", "status", "ORD-1"])
        .env("TEMPORAL_HOST_PORT", &address)
        .assert()
        .code(8)
        .stderr(contains(format!("cannot reach Temporal at {address}")));
    // TEMPORAL_ADDRESS wins over the seed's name.
    let other = format!("127.0.0.1:{}", closed_port());
    orderflow()
        .args(["order", "status", "ORD-1"])
        .env("TEMPORAL_HOST_PORT", &address)
        .env("TEMPORAL_ADDRESS", &other)
        .assert()
        .code(8)
        .stderr(
            contains(format!("cannot reach Temporal at {other}"))
                .and(contains(address.as_str()).not()),
        );
}
