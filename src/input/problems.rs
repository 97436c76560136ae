//! Every problem of an input at once: a user fixes a file in one pass
//! instead of one error per run.

use std::fmt;

use super::InputError;
use crate::errors::count;

/// The most problems a message lists; the rest are counted ("and 5 more").
pub const MAX_SHOWN: usize = 20;

/// The input breaks one rule or more (exit 2); nothing was submitted or
/// written. One problem reads as one line, as it always has:
/// `orders.json: order 2 (ORD-7): items[0].quantity: must be at least 1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidInput {
    problems: Vec<InputError>,
}

impl InvalidInput {
    /// `None` when there is no problem.
    pub fn from_problems(problems: Vec<InputError>) -> Option<Self> {
        (!problems.is_empty()).then_some(Self { problems })
    }

    /// Every problem, in the order of the files and of the items within them.
    pub fn problems(&self) -> &[InputError] {
        &self.problems
    }

    /// The first problem (there is always one).
    pub fn first(&self) -> &InputError {
        &self.problems[0]
    }
}

impl From<InputError> for InvalidInput {
    fn from(problem: InputError) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [one] = self.problems.as_slice() {
            return write!(f, "{one}");
        }
        let mut files: Vec<&str> = Vec::new();
        for p in &self.problems {
            if !files.contains(&p.source_name.as_str()) {
                files.push(&p.source_name);
            }
        }
        let problems = count(self.problems.len(), "problem");
        match files.as_slice() {
            [file] => write!(f, "{problems} in {file}:")?,
            _ => write!(f, "{problems} in {}:", count(files.len(), "file"))?,
        }
        for p in self.problems.iter().take(MAX_SHOWN) {
            write!(f, "\n  {p}")?;
        }
        if self.problems.len() > MAX_SHOWN {
            write!(f, "\n  and {} more", self.problems.len() - MAX_SHOWN)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(file: &str, n: usize) -> InputError {
        InputError {
            source_name: file.into(),
            item: Some(format!("order {n}")),
            field: Some("quantity".into()),
            message: "must be at least 1".into(),
        }
    }

    fn text(problems: Vec<InputError>) -> String {
        InvalidInput::from_problems(problems).unwrap().to_string()
    }

    #[test]
    fn one_problem_is_one_line() {
        assert_eq!(
            text(vec![problem("a.json", 1)]),
            "a.json: order 1: quantity: must be at least 1"
        );
        assert!(InvalidInput::from_problems(vec![]).is_none());
    }

    #[test]
    fn several_are_listed_with_a_count() {
        assert_eq!(
            text(vec![problem("a.json", 1), problem("a.json", 2)]),
            "2 problems in a.json:\n  a.json: order 1: quantity: must be at least 1\n  a.json: order 2: quantity: must be at least 1"
        );
        assert!(
            text(vec![problem("a.json", 1), problem("b.json", 1)])
                .starts_with("2 problems in 2 files:\n")
        );
    }

    #[test]
    fn the_list_is_capped() {
        let all: Vec<InputError> = (1..=25).map(|n| problem("a.json", n)).collect();
        let message = text(all);
        assert!(message.starts_with("25 problems in a.json:\n"), "{message}");
        assert!(message.contains("order 20:") && !message.contains("order 21:"));
        assert!(message.ends_with("\n  and 5 more"), "{message}");
        let message = text((1..=21).map(|n| problem("a.json", n)).collect());
        assert!(message.ends_with("\n  and 1 more"), "{message}");
    }
}
