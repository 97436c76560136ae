//! Visibility queries limited to orders (`order list --query`).

/// Why a `--query` cannot be used as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --query: {0}")]
pub struct QueryError(pub String);

/// A visibility query limited to orders: `WorkflowType = 'OrderWorkflow'
/// AND (query)`. The query's parentheses must pair up outside its quoted
/// values, so nothing in it can close ours and reach other workflows (`x')
/// OR (WorkflowType = 'Other'` is refused); its quotes must close; and it
/// may hold no comment (`/*`, `--`, `#`), inside which a parser would skip
/// what this check counts.
pub fn orders_only(query: &str) -> Result<String, QueryError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            // A backslash escapes the next character in a value, not in a
            // backquoted name.
            (Some('\'' | '"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '#') => return Err(QueryError("'#' starts a comment; none is allowed".into())),
            (None, '-') if chars.peek() == Some(&'-') => {
                return Err(QueryError("'--' starts a comment; none is allowed".into()));
            }
            (None, '/') if chars.peek() == Some(&'*') => {
                return Err(QueryError("'/*' starts a comment; none is allowed".into()));
            }
            (None, '(') => depth += 1,
            (None, ')') => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    QueryError("a ')' closes a parenthesis it did not open".into())
                })?;
            }
            (None, c) if c.is_control() && !c.is_whitespace() => {
                return Err(QueryError(format!("{c:?} is not allowed")));
            }
            (None, _) => {}
        }
    }
    if let Some(q) = quote {
        return Err(QueryError(format!("a value opened with {q} is not closed")));
    }
    if depth > 0 {
        return Err(QueryError(match depth {
            1 => "1 parenthesis is not closed".to_owned(),
            n => format!("{n} parentheses are not closed"),
        }));
    }
    if query.trim().is_empty() {
        return Err(QueryError("it is empty".into()));
    }
    Ok(format!("WorkflowType = 'OrderWorkflow' AND ({query})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_stays_among_orders() {
        assert_eq!(
            orders_only(r#"OrderStatus = "FAILED""#).unwrap(),
            r#"WorkflowType = 'OrderWorkflow' AND (OrderStatus = "FAILED")"#
        );
        // Parentheses and quotes inside values are values.
        assert!(orders_only("CustomerId = 'a) OR (b' AND (OrderTotal > 5)").is_ok());
        assert!(orders_only(r#"CustomerId = 'it\'s (fine'"#).is_ok());
        for escape in [
            "CustomerId = 'x') OR (WorkflowType = 'Other'",
            "OrderStatus = 'FAILED') OR WorkflowType != ('x",
            ")",
        ] {
            let e = orders_only(escape).unwrap_err();
            assert!(e.0.contains("did not open"), "{escape}: {e}");
        }
        assert!(
            orders_only("CustomerId = 'x")
                .unwrap_err()
                .0
                .contains("not closed")
        );
        assert_eq!(
            orders_only("((OrderTotal > 5)").unwrap_err().to_string(),
            "invalid --query: 1 parenthesis is not closed"
        );
        assert!(orders_only("  ").is_err());
        // A comment would hide from this check what the server then reads.
        for hidden in [
            "OrderStatus='x' /* ' */ ) OR WorkflowType='Other' OR ( OrderStatus='y' /* ' */",
            "OrderStatus='x' -- ')",
            "OrderStatus='x' # ')",
        ] {
            let e = orders_only(hidden).unwrap_err();
            assert!(e.0.contains("comment"), "{hidden}: {e}");
        }
        assert!(orders_only("CustomerId = '--x' AND OrderTotal > -5").is_ok());
        // No escape inside a backquoted name: its backslash is a character.
        assert!(orders_only("`a\\` = 'b') OR (x = 'y'").is_err());
        assert!(orders_only("OrderStatus = 'x'\u{1b}[2J").is_err());
    }
}
