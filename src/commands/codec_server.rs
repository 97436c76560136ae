//! `orderflow codec-server`: the Temporal remote codec protocol over HTTP
//! (`codec::server`), with the keys of `--encryption-key-file`, until
//! SIGINT or SIGTERM.

use secrecy::{ExposeSecret, SecretString};

use super::Context;
use crate::cli::CodecServerArgs;
use crate::exit::{Exit, Fail};
use crate::temporal::codec::server::{self, CodecServer};
use crate::worker::shutdown_signal;

pub async fn run(cx: &Context, args: CodecServerArgs) -> anyhow::Result<Exit> {
    let keys = cx.temporal()?.encryption.ok_or_else(|| {
        Fail::usage(
            "codec-server needs the encryption keys: pass --encryption-key-file \
             or set ORDERFLOW_ENCRYPTION_KEY_FILE",
        )
    })?;
    let token = match &args.auth_token_file {
        Some(path) => Some(read_token(path)?),
        None => None,
    };
    // It decrypts for whoever asks: beyond this machine, only with a token.
    if token.is_none() && !args.listen.ip().is_loopback() {
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
        if token.is_some() {
            "bearer token required"
        } else {
            "no token: it answers this machine only"
        }
    ));
    let server = CodecServer {
        keys,
        allow_origins: args.allow_origin,
        token,
        allow_hosts: args.allow_host,
        listen: address,
    };
    tokio::select! {
        served = server::serve(listener, server) => served?,
        () = shutdown_signal() => {}
    }
    Ok(Exit::Success)
}

/// The token's file, trimmed; an empty or unreadable one is refused, and
/// one that group or others may read (a token is a secret, like a key).
fn read_token(path: &std::path::Path) -> Result<SecretString, Fail> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        Fail::usage(format!(
            "cannot read --auth-token-file {}: {e}",
            path.display()
        ))
    })?;
    crate::temporal::codec::keys::refuse_open_permissions(&metadata, path, "the token file")?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fail::usage(format!(
            "cannot read --auth-token-file {}: {e}",
            path.display()
        ))
    })?;
    let token = SecretString::from(text.trim().to_owned());
    if token.expose_secret().is_empty() {
        return Err(Fail::usage(format!(
            "--auth-token-file {} is empty",
            path.display()
        )));
    }
    Ok(token)
}
