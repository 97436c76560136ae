//! How errors read: a chain of causes said once each, counts in words.

use std::error::Error;

/// An error and its causes, `outer: inner`, each said once. Many errors
/// (sqlx's, for one) already end with their cause's text, which printing
/// the whole chain (`{:#}`) repeats: `relation "x" does not exist: relation
/// "x" does not exist`.
pub fn text(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = e.to_string();
        if !text.ends_with(part.as_str()) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}

/// `1 problem`, `5 problems`: a count and its noun, plural unless one.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use anyhow::Context as _;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("error returned from database: {0}")]
    struct Wrapper(#[source] io::Error);

    #[test]
    fn plurals() {
        assert_eq!(count(1, "problem"), "1 problem");
        assert_eq!(count(0, "problem"), "0 problems");
        assert_eq!(count(5, "pending migration"), "5 pending migrations");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let inner = io::Error::other("relation \"orders\" does not exist");
        let err = anyhow::Error::new(Wrapper(inner)).context("listing orders");
        assert_eq!(
            text(err.as_ref()),
            "listing orders: error returned from database: relation \"orders\" does not exist"
        );
        assert_eq!(
            format!("{err:#}"),
            "listing orders: error returned from database: relation \"orders\" does not exist: relation \"orders\" does not exist",
            "anyhow's own form repeats it"
        );
        let err = Err::<(), _>(io::Error::other("disk full"))
            .context("writing")
            .unwrap_err();
        assert_eq!(text(err.as_ref()), "writing: disk full");
    }
}
