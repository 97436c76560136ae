//! The input edge: JSON files from users, parsed into domain types with
//! errors that name the file, the item, the field and the rule, e.g.
//! `orders.json: order 2 (ORD-7): items[0].quantity: must be at least 1`.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::domain::{MAX_ID_LEN, Money};

mod catalog;
mod fields;
mod orders;
mod problems;

pub use catalog::parse_catalog;
pub use fields::Fields;
pub use orders::{ParsedOrder, parse_orders, parse_workflow_order, read_orders};
pub use problems::{InvalidInput, MAX_SHOWN};

/// One way the input breaks a rule. Problems are gathered into an
/// [`InvalidInput`] (exit 2): nothing is submitted or written when any item
/// of the input is invalid. Its JSON is one entry of a JSON error's
/// `problems`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, utoipa::ToSchema)]
pub struct InputError {
    /// The file as the user named it, or `<stdin>`.
    #[serde(rename = "file")]
    pub source_name: String,
    /// Which item: `order 2 (ORD-7)`, `product 1`.
    pub item: Option<String>,
    /// The JSON path of the field: `items[0].quantity`.
    pub field: Option<String>,
    /// The rule broken, or what is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some(item) = &self.item {
            write!(f, ": {item}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The text of one input file, named as the user gave it.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
    /// What an order without an `id` derives its ID from, with its content:
    /// the file's absolute path, or `<stdin>`. `None` (text from elsewhere,
    /// e.g. an API request): such orders get a fresh ID each time.
    pub identity: Option<String>,
}

/// The largest input file orderflow reads (an order file or a catalog):
/// about 100,000 orders. Larger batches are split over several files.
pub const MAX_INPUT_BYTES: u64 = 32 * 1024 * 1024;

/// The longest message an input error carries: beyond it, the message
/// (which may quote the bad value) is cut.
const MAX_MESSAGE_CHARS: usize = 240;

impl Source {
    /// Reads `path`, or stdin for `-`: at most [`MAX_INPUT_BYTES`], UTF-8,
    /// with a byte-order mark at the start allowed (and dropped).
    pub fn read(path: &Path) -> Result<Self, InputError> {
        let is_stdin = path.as_os_str() == "-";
        let name = if is_stdin {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        let fail = |message: String| InputError {
            source_name: name.clone(),
            item: None,
            field: None,
            message,
        };
        let mut bytes = Vec::new();
        let read = if is_stdin {
            std::io::stdin()
                .take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut bytes)
        } else {
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
        };
        read.map_err(|e| fail(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_INPUT_BYTES {
            return Err(fail(format!(
                "is larger than {} MiB, the most orderflow reads from one file; \
                 split it into several files (--file repeats)",
                MAX_INPUT_BYTES / (1024 * 1024)
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            fail(format!(
                "is not UTF-8 text (bad byte at offset {}); save it as UTF-8",
                e.utf8_error().valid_up_to()
            ))
        })?;
        // Stdin has no name of its own: its whole text stands for it, so
        // the same input piped again names the same orders, another does not.
        let identity = if is_stdin {
            use sha2::Digest as _;
            format!(
                "<stdin> {}",
                hex::encode(sha2::Sha256::digest(text.as_bytes()))
            )
        } else {
            std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.to_owned())
                .display()
                .to_string()
        };
        Ok(Self {
            identity: Some(identity),
            ..Self::new(name, text)
        })
    }

    /// A source from text already in memory; a byte-order mark at its
    /// start is dropped.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text: String = text.into();
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
        };
        Self {
            name: name.into(),
            text,
            identity: None,
        }
    }

    fn error(
        &self,
        item: Option<String>,
        field: Option<String>,
        message: impl Into<String>,
    ) -> InputError {
        InputError {
            source_name: self.name.clone(),
            item,
            field,
            message: cut(message.into()),
        }
    }

    /// The items of the file: one JSON object, or an array of them.
    pub fn items(&self) -> Result<Vec<&RawValue>, InputError> {
        let syntax = |e: serde_json::Error| {
            let what = strip_location(&e.to_string());
            let at = position(&self.text, e.line(), e.column());
            let message = if what == "recursion limit exceeded" {
                format!(
                    "is nested more than 128 levels deep (arrays or objects within each \
                     other, at {at}); an order is nested 3 levels"
                )
            } else {
                format!("malformed JSON at {at}: {what}")
            };
            self.error(None, None, message)
        };
        match self.text.trim_start().chars().next() {
            None => Err(self.error(
                None,
                None,
                "is empty; expected a JSON object or an array of objects",
            )),
            Some('[') => {
                let items: Vec<&RawValue> = serde_json::from_str(&self.text).map_err(syntax)?;
                if items.is_empty() {
                    return Err(self.error(
                        None,
                        None,
                        "holds an empty array; expected at least one entry",
                    ));
                }
                Ok(items)
            }
            Some('{') => Ok(vec![serde_json::from_str(&self.text).map_err(syntax)?]),
            Some(_) => {
                // Still report a syntax error where there is one.
                serde_json::from_str::<&RawValue>(&self.text).map_err(syntax)?;
                Err(self.error(None, None, "must hold a JSON object or an array of objects"))
            }
        }
    }

    /// The fields of one item, to read one by one so that every bad field
    /// is reported; `path` is where the item sits within its parent
    /// (`items[0]`), empty for a top-level item. An error when the item is
    /// not a JSON object.
    pub fn fields<'s>(
        &'s self,
        item: &'s RawValue,
        label: &str,
        path: &str,
    ) -> Result<Fields<'s>, InputError> {
        let field = (!path.is_empty()).then(|| path.to_owned());
        let kind = match item.get().trim_start().chars().next() {
            Some('{') => None,
            Some('[') => Some("an array"),
            Some('"') => Some("a string"),
            Some('t' | 'f') => Some("true or false"),
            Some('n') => Some("null"),
            _ => Some("a number"),
        };
        if let Some(kind) = kind {
            return Err(self.error(
                Some(label.to_owned()),
                field,
                format!("is {kind}, not a JSON object"),
            ));
        }
        Fields::new(self, item, label, path).map_err(|e| {
            self.error(
                Some(label.to_owned()),
                field,
                strip_location(&e.to_string()),
            )
        })
    }

    /// Deserializes one value of an item; an error names the item and the
    /// field's path (`path`, then the path within the value).
    fn parse_value<'a, T: Deserialize<'a>>(
        &self,
        value: &'a RawValue,
        label: &str,
        path: &str,
    ) -> Result<T, InputError> {
        let de = &mut serde_json::Deserializer::from_str(value.get());
        serde_path_to_error::deserialize(de).map_err(|e| {
            let within = e.path().to_string();
            let field = match within.as_str() {
                "." => path.to_owned(),
                w if w.starts_with('[') => format!("{path}{w}"),
                w => format!("{path}.{w}"),
            };
            self.error(
                Some(label.to_owned()),
                (!field.is_empty()).then_some(field),
                plain(&strip_location(&e.inner().to_string())),
            )
        })
    }

    /// An error about one item as a whole, or one of its fields.
    pub fn item_error(
        &self,
        label: &str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> InputError {
        self.error(Some(label.to_owned()), field.map(str::to_owned), message)
    }
}

/// Labels an item for messages: `product 2 (PROD-7)`, 1-based, with its ID
/// when it has a readable one.
pub fn item_label(kind: &str, index: usize, item: &RawValue, id_field: &str) -> String {
    let id = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(item.get())
        .ok()
        .and_then(|m| m.get(id_field).and_then(|v| v.as_str().map(str::to_owned)))
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN);
    match id {
        Some(id) => format!("{kind} {} ({})", index + 1, crate::domain::escape(&id)),
        None => format!("{kind} {}", index + 1),
    }
}

/// A message past [`MAX_MESSAGE_CHARS`], cut there.
fn cut(message: String) -> String {
    let count = message.chars().count();
    if count <= MAX_MESSAGE_CHARS {
        return message;
    }
    let head: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    format!("{head}… (message cut; {count} characters)")
}

/// Where a syntax error is, for people. serde_json counts a line's columns
/// from 0, so an error just after a line break (a file that ends too soon)
/// is at "line L, column 0": that is the end of the last line with text.
fn position(text: &str, line: usize, column: usize) -> String {
    if column > 0 {
        return format!("line {line}, column {column}");
    }
    let last_with_text = text
        .lines()
        .take(line.saturating_sub(1))
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, _)| i + 1)
        .last();
    match last_with_text {
        Some(l) => format!("the end of line {l}"),
        None => format!("line {line}"),
    }
}

/// serde_json appends " at line L column C"; paths say more within an item.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// serde's wording of a type mismatch or an unknown variant, in the
/// input's terms: `must be a whole number, not 1.5` rather than `invalid
/// type: floating point `1.5`, expected i64`. Other messages (the domain
/// types' own rules) pass unchanged.
fn plain(message: &str) -> String {
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        return format!(
            "must be {}, not {}",
            expected_words(expected),
            found_words(found)
        );
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        let choices = expected
            .trim_start_matches("one of ")
            .replace('`', "")
            .replace(" or ", ", ");
        return format!("{} is not one of: {choices}", found.replace('`', "\""));
    }
    message.to_owned()
}

/// What serde expected, as the input's author would say it.
fn expected_words(expected: &str) -> String {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a string" | "a borrowed string" => "text (a JSON string)".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "a JSON object".to_owned(),
        other if other.starts_with("struct ") => "a JSON object".to_owned(),
        other => other.to_owned(),
    }
}

/// What serde found: `floating point `1.5`` is `1.5`, `string "x"` is `"x"`.
fn found_words(found: &str) -> String {
    for kind in ["floating point ", "integer ", "boolean "] {
        if let Some(value) = found.strip_prefix(kind) {
            return value.trim_matches('`').to_owned();
        }
    }
    if let Some(text) = found.strip_prefix("string ") {
        return text.to_owned();
    }
    match found {
        "map" => "an object".to_owned(),
        "sequence" => "an array".to_owned(),
        "unit value" | "null" => "null".to_owned(),
        other => other.to_owned(),
    }
}

/// Whether an amount as written (a JSON number or string) is in exponent
/// notation (`1e3`, `"1.2E1"`): a number, but no written-out amount. Order
/// files and catalogs refuse it; a workflow's input still accepts it.
pub(crate) fn in_exponent_notation(raw: &RawValue) -> bool {
    let text = raw.get().trim_matches('"');
    text.contains(['e', 'E'])
        && text.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        && rust_decimal::Decimal::from_scientific(text).is_ok()
}

/// The message for an amount in exponent notation.
pub(crate) fn exponent_message(raw: &RawValue) -> String {
    format!(
        "{} is in exponent notation; write the amount out, like 12.50",
        crate::domain::quote(raw.get().trim_matches('"'))
    )
}

/// A money amount as it appears in input: a JSON number (`12.5`) or a string
/// (`"12.50"`), read from its exact text — never through a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonMoney(pub Money);

impl<'de> Deserialize<'de> for JsonMoney {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(d)?;
        let text = raw.get();
        let text = if text.starts_with('"') {
            serde_json::from_str::<String>(text).map_err(serde::de::Error::custom)?
        } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            text.to_owned()
        } else {
            return Err(serde::de::Error::custom(format!(
                "must be a decimal amount (a number or a string like \"12.50\"), not {}",
                crate::domain::clip(text)
            )));
        };
        Money::parse(&text)
            .map(JsonMoney)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Quantity;

    fn source(text: &str) -> Source {
        Source::new("in.json", text)
    }

    /// An item read as `{"price": amount, "qty": quantity}`: its price, or
    /// every problem in it.
    fn line(s: &Source, item: &RawValue, label: &str) -> Result<Money, Vec<String>> {
        let mut f = s.fields(item, label, "").map_err(|e| vec![e.to_string()])?;
        let price: Option<JsonMoney> = f.required("price");
        let _: Option<Quantity> = f.required("qty");
        let problems = f.finish(&["price", "qty"]);
        match price {
            Some(price) if problems.is_empty() => Ok(price.0),
            _ => Err(problems.iter().map(ToString::to_string).collect()),
        }
    }

    fn first_problem(s: &Source, item: &RawValue) -> String {
        line(s, item, "line 1").unwrap_err().remove(0)
    }

    #[test]
    fn object_or_array() {
        assert_eq!(source(r#"{"a":1}"#).items().unwrap().len(), 1);
        assert_eq!(source(r#" [{"a":1},{"a":2}]"#).items().unwrap().len(), 2);
        assert!(
            source("[]")
                .items()
                .unwrap_err()
                .message
                .contains("empty array")
        );
        assert!(source("").items().unwrap_err().message.contains("is empty"));
        assert!(
            source("42")
                .items()
                .unwrap_err()
                .message
                .contains("object or an array")
        );
    }

    #[test]
    fn malformed_json_says_where() {
        let err = source("{\n \"a\": 1,\n}").items().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("in.json: malformed JSON at line 3, column 1"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_ends_too_soon_is_at_the_end_of_its_last_line() {
        // serde_json says "line 3, column 0" here.
        let err = source("[{\"a\": 1},\n {\"b\": 2}\n\n").items().unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.json: malformed JSON at the end of line 2: EOF while parsing a list"
        );
        let err = source("{\"a\": 1,\n").items().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("in.json: malformed JSON at the end of line 1: "),
            "{err}"
        );
        assert!(!err.to_string().contains("column 0"), "{err}");
    }

    #[test]
    fn amounts_come_from_their_exact_text() {
        let s = source(r#"[{"price": 0.1, "qty": 1}, {"price": "0.20", "qty": 2}]"#);
        let items = s.items().unwrap();
        let a = line(&s, items[0], "line 1").unwrap();
        let b = line(&s, items[1], "line 2").unwrap();
        assert_eq!(a.plus(b).unwrap(), Money::parse("0.3").unwrap());
    }

    #[test]
    fn errors_name_file_item_field_and_rule() {
        let s = source(
            r#"[{"price": 0.105, "qty": 1}, {"price": 1, "qty": 0}, {"price": 1, "qty": 1, "x": 1}, {"price": true, "qty": 1}]"#,
        );
        let items = s.items().unwrap();
        let errs: Vec<String> = items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                line(&s, it, &format!("line {}", i + 1))
                    .unwrap_err()
                    .remove(0)
            })
            .collect();
        assert_eq!(
            errs[0],
            "in.json: line 1: price: 0.105 has more than 2 decimal places; amounts are exact to the cent"
        );
        assert_eq!(errs[1], "in.json: line 2: qty: must be at least 1");
        assert_eq!(
            errs[2],
            "in.json: line 3: x: unknown field `x`, expected `price` or `qty`"
        );
        assert!(
            errs[3].starts_with("in.json: line 4: price: must be a decimal amount"),
            "{}",
            errs[3]
        );
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let s = Source::new("bom.json", "\u{feff}{\"a\": 1}");
        assert_eq!(s.items().unwrap().len(), 1);
    }

    #[test]
    fn deep_nesting_is_reported_for_what_it_is() {
        // Arrays in arrays: the item is an array, not an object (not "[0]:
        // expected a string", as reading it as a struct's fields would say).
        let deep = format!("[{}{}]", "[".repeat(200), "]".repeat(200));
        let s = source(&deep);
        let items = s.items().unwrap();
        assert_eq!(
            first_problem(&s, items[0]),
            "in.json: line 1: is an array, not a JSON object"
        );
        // Objects in objects, within a field: its path and what it expected.
        let deep = format!(
            r#"{{"price": 1, "qty": {}1{}}}"#,
            r#"{"a":"#.repeat(300),
            "}".repeat(300)
        );
        let s = source(&deep);
        let items = s.items().unwrap();
        let err = first_problem(&s, items[0]);
        assert!(err.starts_with("in.json: line 1: qty: "), "{err}");
    }

    #[test]
    fn a_huge_bad_value_is_not_echoed_back() {
        let email = "x".repeat(5_000_000);
        let s = source(&format!(r#"{{"price": "{email}", "qty": 1}}"#));
        let items = s.items().unwrap();
        let err = first_problem(&s, items[0]);
        assert!(err.len() < 400, "{} bytes", err.len());
        assert!(err.starts_with("in.json: line 1: price: \"xxx"), "{err}");
    }

    #[test]
    fn labels_use_the_id_when_readable() {
        let s = source(r#"[{"id":"ORD-7"},{"id":5}]"#);
        let items = s.items().unwrap();
        assert_eq!(item_label("order", 0, items[0], "id"), "order 1 (ORD-7)");
        assert_eq!(item_label("order", 1, items[1], "id"), "order 2");
    }
}
