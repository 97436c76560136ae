//! The shutdown signal the long-running commands share (`worker`, `dev`,
//! `demo`, `codec-server`): a worker drains on it.

/// Resolves on the first SIGINT or SIGTERM.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    // Handled from now on, not from the first poll: a signal that comes
    // while the caller is still starting up is not fatal, and is seen.
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = term.recv() => {},
        }
    }
}

/// The first SIGINT or SIGTERM, and one that comes after it: a command
/// that stops gracefully on the first stops at once on the second.
pub fn shutdown_signals() -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
) {
    let first = shutdown_signal();
    let told = std::sync::Arc::new(tokio::sync::Notify::new());
    let tell = told.clone();
    (
        async move {
            first.await;
            tell.notify_one();
        },
        async move {
            told.notified().await;
            shutdown_signal().await;
        },
    )
}
