//! What the admin commands print: aligned tables for people, one JSON
//! document for scripts.
//!
//! JSON is written by hand: the gateway has no serde dependency, and the
//! documents here are small trees of strings, numbers and lists, which a
//! tiny value type renders exactly (RFC 8259 string escaping included).

use std::fmt::{self, Write as _};

/// How a command prints its result (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON document on stdout, for scripts.
    Json,
}

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number (every number the Kafka protocol carries is one).
    Int(i64),
    /// A string.
    Str(String),
    /// A list.
    Arr(Vec<Json>),
    /// An object; keys keep their order, so documents read predictably.
    Obj(Vec<(String, Json)>),
}

/// An object from `(key, value)` pairs.
pub fn obj<const N: usize>(fields: [(&str, Json); N]) -> Json {
    Json::Obj(
        fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

impl From<&str> for Json {
    fn from(value: &str) -> Self {
        Json::Str(value.to_owned())
    }
}

impl From<String> for Json {
    fn from(value: String) -> Self {
        Json::Str(value)
    }
}

impl From<bool> for Json {
    fn from(value: bool) -> Self {
        Json::Bool(value)
    }
}

impl From<i64> for Json {
    fn from(value: i64) -> Self {
        Json::Int(value)
    }
}

impl From<i32> for Json {
    fn from(value: i32) -> Self {
        Json::Int(i64::from(value))
    }
}

impl From<i16> for Json {
    fn from(value: i16) -> Self {
        Json::Int(i64::from(value))
    }
}

impl From<usize> for Json {
    fn from(value: usize) -> Self {
        Json::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(value: Option<T>) -> Self {
        value.map_or(Json::Null, Into::into)
    }
}

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(values: Vec<T>) -> Self {
        Json::Arr(values.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(value) => write!(f, "{value}"),
            Json::Int(value) => write!(f, "{value}"),
            Json::Str(value) => write_string(f, value),
            Json::Arr(values) => {
                f.write_char('[')?;
                for (index, value) in values.iter().enumerate() {
                    if index > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_char(']')
            }
            Json::Obj(fields) => {
                f.write_char('{')?;
                for (index, (key, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        f.write_char(',')?;
                    }
                    write_string(f, key)?;
                    write!(f, ":{value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// A JSON string literal: quotes, backslashes and control characters
/// escaped, everything else (UTF-8 included) as is.
fn write_string(f: &mut impl fmt::Write, value: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Rows under a header, rendered with each column as wide as its widest
/// cell, two spaces apart, as `kafka-topics` and `rpk` print.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|name| (*name).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty, extra ones are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut text = String::new();
            for (index, width) in widths.iter().enumerate().take(columns) {
                let cell = line.get(index).map_or("", String::as_str);
                if index + 1 == columns {
                    text.push_str(cell);
                } else {
                    let pad = width - cell.chars().count();
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A list of ids as a table cell: `1,2,3`.
pub fn ids(values: &[i32]) -> String {
    values
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What a command prints: the JSON document and the text for people,
/// both built from one result so they cannot disagree.
pub struct Report {
    /// The document `--format json` prints.
    pub json: Json,
    /// What `--format table` prints (ends with a newline unless empty).
    pub text: String,
}

impl Report {
    /// The output in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => format!("{}\n", self.json),
            Format::Table => self.text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_strings_and_keeps_key_order() {
        let doc = obj([
            ("name", Json::from("a\"b\\c\nd\u{1}é")),
            ("n", Json::from(-3i64)),
            ("list", Json::from(vec![1i32, 2])),
            ("none", Json::from(None::<String>)),
            ("ok", Json::from(true)),
        ]);
        assert_eq!(
            doc.to_string(),
            r#"{"name":"a\"b\\c\nd\u0001é","n":-3,"list":[1,2],"none":null,"ok":true}"#
        );
    }

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let mut table = Table::new(&["TOPIC", "PARTITIONS", "RF"]);
        table.row(vec!["orders".into(), "12".into(), "3".into()]);
        table.row(vec!["a".into(), "1".into(), "1".into()]);
        assert_eq!(
            table.render(),
            "TOPIC   PARTITIONS  RF\norders  12          3\na       1           1\n"
        );
    }

    #[test]
    fn a_short_row_prints_empty_cells_without_trailing_spaces() {
        let mut table = Table::new(&["A", "B"]);
        table.row(vec!["x".into()]);
        assert_eq!(table.render(), "A  B\nx\n");
    }

    #[test]
    fn ids_join_with_commas() {
        assert_eq!(ids(&[1, 2, 3]), "1,2,3");
        assert_eq!(ids(&[]), "");
    }
}
