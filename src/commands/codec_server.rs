//! `orderflow codec-server`: the Temporal remote codec protocol over HTTP
//! (`codec::server`), with the keys of `--encryption-key-file`, until
//! SIGINT or SIGTERM.

use super::Context;
use crate::cli::CodecServerArgs;
use crate::exit::{Exit, Fail};
use crate::temporal::codec::server::{self, CodecServer};
use crate::web::guard::{Guard, read_tokens};
use crate::worker::shutdown_signal;

pub async fn run(cx: &Context, args: CodecServerArgs) -> anyhow::Result<Exit> {
    let keys = cx.temporal()?.encryption.ok_or_else(|| {
        Fail::usage(
            "codec-server needs the encryption keys: pass --encryption-key-file \
             or set ORDERFLOW_ENCRYPTION_KEY_FILE",
        )
    })?;
    let tokens = match &args.auth_token_file {
        Some(path) => read_tokens(path, "--auth-token-file")?,
        None => Vec::new(),
    };
    // It decrypts for whoever asks: beyond this machine, only with a token.
    if tokens.is_empty() && !args.listen.ip().is_loopback() {
        return Err(Fail::usage(format!(
            "--listen {} is reachable from other machines, and anyone who reaches a codec \
             server without a token can decrypt with its keys; pass --auth-token-file, or \
             listen on 127.0.0.1",
            args.listen
        ))
        .into());
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            Fail::usage(format!(
                "cannot listen on --listen {}: {e}; choose a free port",
                args.listen
            ))
        })?;
    let address = listener.local_addr()?;
    cx.printer.note(format!(
        "orderflow codec-server: http://{address} (keys {}; origins {}; {})",
        keys.ids().collect::<Vec<_>>().join(", "),
        args.allow_origin.join(", "),
        if !tokens.is_empty() {
            "bearer token required"
        } else {
            "no token: it answers this machine only"
        }
    ));
    let server = CodecServer {
        keys,
        guard: Guard {
            tokens,
            allow_hosts: args.allow_host,
            listen: Some(address),
            allow_origins: args.allow_origin,
        },
    };
    tokio::select! {
        served = server::serve(listener, server) => served?,
        () = shutdown_signal() => {}
    }
    Ok(Exit::Success)
}
