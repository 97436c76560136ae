//! One JSON object of the input, read field by field, so that every bad,
//! missing, repeated or unknown field is reported — not only the first, as
//! deserializing a whole struct would.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{InputError, Source};

/// The fields of one object, in the order written, and the problems found
/// in them so far. Read each known field once ([`required`](Self::required),
/// [`optional`](Self::optional)), then [`finish`](Self::finish) names the
/// fields nobody asked for.
pub struct Fields<'s> {
    source: &'s Source,
    label: String,
    path: String,
    entries: Vec<(String, &'s RawValue)>,
    read: Vec<bool>,
    problems: Vec<InputError>,
}

/// An object's entries in order, duplicates kept (serde's maps drop them).
struct Entries<'s>(Vec<(String, &'s RawValue)>);

impl<'de: 's, 's> Deserialize<'de> for Entries<'s> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Each)
    }
}

impl<'s> Fields<'s> {
    pub(super) fn new(
        source: &'s Source,
        item: &'s RawValue,
        label: &str,
        path: &str,
    ) -> Result<Self, serde_json::Error> {
        let Entries(entries) = serde_json::from_str(item.get())?;
        let mut fields = Self {
            source,
            label: label.to_owned(),
            path: path.to_owned(),
            read: vec![false; entries.len()],
            entries,
            problems: Vec::new(),
        };
        let repeated: Vec<String> = (0..fields.entries.len())
            .filter(|&i| {
                let name = &fields.entries[i].0;
                fields.entries[..i].iter().any(|(n, _)| n == name)
            })
            .map(|i| fields.entries[i].0.clone())
            .collect();
        for name in repeated {
            fields.problem(
                Some(&name),
                format!("appears more than once in the object; keep one `{name}`"),
            );
        }
        Ok(fields)
    }

    /// The item's label, for messages: `order 2 (ORD-7)`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// `name`'s path from the item: `items[0].quantity`.
    pub fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The raw value of `name` (its first, if repeated), marked as read;
    /// `None` when absent.
    pub fn raw(&mut self, name: &str) -> Option<&'s RawValue> {
        let mut first = None;
        for (i, (n, value)) in self.entries.iter().enumerate() {
            if n == name {
                self.read[i] = true;
                first = first.or(Some(*value));
            }
        }
        first
    }

    /// A field that must be present. `None` when it is absent or invalid:
    /// the problem is recorded.
    pub fn required<T: Deserialize<'s>>(&mut self, name: &str) -> Option<T> {
        match self.raw(name) {
            Some(value) => self.parse(value, name),
            None => {
                // `customerId` for `customerID`: one problem, at the field
                // written, not a missing one and an unknown one.
                let misspelt = self
                    .entries
                    .iter()
                    .enumerate()
                    .find(|(i, (n, _))| !self.read[*i] && n.eq_ignore_ascii_case(name))
                    .map(|(i, (n, _))| (i, n.clone()));
                match misspelt {
                    Some((i, written)) => {
                        self.read[i] = true;
                        self.problem(
                            Some(&written),
                            format!("field names are case-sensitive: did you mean `{name}`?"),
                        );
                    }
                    None => self.problem(None, format!("missing field `{name}`")),
                }
                None
            }
        }
    }

    /// A field that may be absent (or `null`). `None` when it is invalid:
    /// the problem is recorded.
    pub fn optional<T: Deserialize<'s>>(&mut self, name: &str) -> Option<Option<T>> {
        match self.raw(name) {
            Some(value) => self.parse(value, name),
            None => Some(None),
        }
    }

    /// Reads one value of this item; a problem is recorded under `name`.
    pub fn parse<T: Deserialize<'s>>(&mut self, value: &'s RawValue, name: &str) -> Option<T> {
        let path = self.path_of(name);
        self.source
            .parse_value(value, &self.label, &path)
            .map_err(|e| self.problems.push(e))
            .ok()
    }

    /// Records a problem found by the caller, e.g. in a nested item.
    pub fn push(&mut self, problem: InputError) {
        self.problems.push(problem);
    }

    /// Records a problem with the item as a whole, or one of its fields.
    pub fn problem(&mut self, field: Option<&str>, message: impl Into<String>) {
        let problem = self.error(field, message);
        self.problems.push(problem);
    }

    /// The problems found, once every field nobody read is reported as
    /// unknown (`expected` lists the known ones, as serde words it).
    pub fn finish(mut self, expected: &[&str]) -> Vec<InputError> {
        let unknown: Vec<String> = self
            .entries
            .iter()
            .zip(&self.read)
            .filter(|(_, read)| !**read)
            .map(|((name, _), _)| name.clone())
            .collect();
        for name in unknown {
            let closest = expected
                .iter()
                .map(|e| {
                    (
                        strsim::damerau_levenshtein(&name.to_lowercase(), &e.to_lowercase()),
                        e,
                    )
                })
                // A typo, not another word: a third of the name at most.
                .filter(|(distance, e)| *distance <= (e.len().max(name.len()) / 3).max(1))
                .min_by_key(|(distance, _)| *distance);
            let message = match closest {
                Some((_, e)) => format!("unknown field `{name}`; did you mean `{e}`?"),
                None => format!("unknown field `{name}`, expected {}", one_of(expected)),
            };
            let problem = self.error(Some(&name), message);
            self.problems.push(problem);
        }
        self.problems
    }

    fn error(&self, field: Option<&str>, message: impl Into<String>) -> InputError {
        let field = match field {
            Some(name) => Some(self.path_of(name)),
            None => (!self.path.is_empty()).then(|| self.path.clone()),
        };
        self.source.error(Some(self.label.clone()), field, message)
    }
}

/// serde's wording: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => "no fields".to_owned(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        all => format!("one of {}", all.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Quantity;

    fn problems(text: &str) -> Vec<String> {
        let source = Source::new("in.json", text);
        let items = source.items().unwrap();
        let mut fields = source.fields(items[0], "line 1", "").unwrap();
        let _: Option<Quantity> = fields.required("qty");
        let _: Option<Option<String>> = fields.optional("note");
        fields
            .finish(&["qty", "note"])
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_bad_field_is_reported() {
        assert_eq!(
            problems(r#"{"qty": 0, "note": 5, "x": 1, "y": 2}"#),
            [
                "in.json: line 1: qty: must be at least 1",
                "in.json: line 1: note: must be text (a JSON string), not 5",
                "in.json: line 1: x: unknown field `x`, expected `qty` or `note`",
                "in.json: line 1: y: unknown field `y`, expected `qty` or `note`",
            ]
        );
        assert_eq!(
            problems(r#"{"note": null}"#),
            ["in.json: line 1: missing field `qty`"]
        );
        assert_eq!(
            problems(r#"{"qty": 1, "qty": 2}"#),
            ["in.json: line 1: qty: appears more than once in the object; keep one `qty`"]
        );
        assert!(problems(r#"{"qty": 1}"#).is_empty());
        assert_eq!(
            problems(r#"{"QTY": 1, "nots": "x"}"#),
            [
                "in.json: line 1: QTY: field names are case-sensitive: did you mean `qty`?",
                "in.json: line 1: nots: unknown field `nots`; did you mean `note`?",
            ]
        );
    }

    #[test]
    fn serde_wording_for_expected_fields() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "one of `a`, `b`, `c`");
    }
}
