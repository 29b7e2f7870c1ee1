//! A strict JSON parser for request bodies (spec §1 "Strict decoding"): keeps key order and number
//! text, and rejects duplicate keys at any depth and integer literals that do not fit `i64`.

use std::collections::HashSet;
use std::fmt::Write as _;

/// Deepest nesting of arrays and objects accepted (deeper input is refused, never overflows the stack).
const MAX_DEPTH: usize = 128;

/// A parsed JSON value. Objects keep their keys in document order (duplicates are refused while
/// parsing) and numbers keep their literal text, so a value can be written back as sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// A JSON number literal, as written in the document (validated by the grammar).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number {
    text: String,
}

impl Number {
    /// The value, when the literal has no fraction and no exponent (it then always fits `i64`:
    /// the parser refuses integer literals that do not).
    pub(crate) fn as_integer(&self) -> Option<i64> {
        if self.text.contains(['.', 'e', 'E']) {
            None
        } else {
            self.text.parse().ok()
        }
    }
}

/// Why a document was refused; the text goes into the `INVALID_REQUEST` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub(crate) struct ParseError {
    what: &'static str,
    offset: usize,
}

impl Json {
    /// The JSON type name, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::Number(_) => "number",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::Object(_) => "object",
        }
    }

    /// True when a `null` occurs anywhere in the value (itself included).
    pub(crate) fn contains_null(&self) -> bool {
        match self {
            Self::Null => true,
            Self::Bool(_) | Self::Number(_) | Self::String(_) => false,
            Self::Array(items) => items.iter().any(Self::contains_null),
            Self::Object(entries) => entries.iter().any(|(_, v)| v.contains_null()),
        }
    }

    /// Compact JSON text: key order and number literals exactly as parsed.
    pub(crate) fn to_compact_string(&self) -> String {
        let mut out = String::new();
        self.write_compact(&mut out);
        out
    }

    /// The value as compact raw JSON, for storing and embedding verbatim.
    pub(crate) fn to_raw_value(&self) -> Box<serde_json::value::RawValue> {
        match serde_json::value::RawValue::from_string(self.to_compact_string()) {
            Ok(raw) => raw,
            // Our writer only produces valid JSON; keep a valid value regardless.
            Err(_) => serde_json::value::RawValue::NULL.to_owned(),
        }
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Number(n) => out.push_str(&n.text),
            Self::String(s) => write_string(out, s),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_compact(out);
                }
                out.push(']');
            }
            Self::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write_compact(out);
                }
                out.push('}');
            }
        }
    }
}

/// Writes `s` as a JSON string literal, escaping like `serde_json` does.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses one complete JSON document: optional whitespace, one value, optional whitespace.
pub(crate) fn parse(bytes: &[u8]) -> Result<Json, ParseError> {
    let mut parser = Parser { bytes, pos: 0 };
    parser.skip_ws();
    if parser.pos == bytes.len() {
        return Err(parser.error("empty document"));
    }
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != bytes.len() {
        return Err(parser.error("trailing characters after the JSON value"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> ParseError {
        ParseError {
            what,
            offset: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, literal: &'static [u8], value: Json) -> Result<Json, ParseError> {
        if self.bytes[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, ParseError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.expect_literal(b"true", Json::Bool(true)),
            Some(b'f') => self.expect_literal(b"false", Json::Bool(false)),
            Some(b'n') => self.expect_literal(b"null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Json::Number),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1; // '{'
        let mut entries: Vec<(String, Json)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(entries));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key_offset = self.pos;
            let key = self.string()?;
            if !seen.insert(key.clone()) {
                return Err(ParseError {
                    what: "duplicate key",
                    offset: key_offset,
                });
            }
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(entries));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self) -> Result<Number, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        // The slice is ASCII by construction.
        let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        if integer {
            if text.parse::<i64>().is_err() {
                return Err(ParseError {
                    what: "integer does not fit a signed 64-bit integer",
                    offset: start,
                });
            }
        } else if !text.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(ParseError {
                what: "number out of range",
                offset: start,
            });
        }
        Ok(Number { text })
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let Some(hex) = self.bytes.get(self.pos..self.pos + 4) else {
            return Err(self.error("invalid unicode escape"));
        };
        let mut value: u16 = 0;
        for &b in hex {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(self.error("invalid unicode escape")),
            };
            value = (value << 4) | u16::from(digit);
        }
        self.pos += 4;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return String::from_utf8(out)
                        .map_err(|_| self.error("invalid UTF-8 in string"));
                }
                b'\\' => {
                    self.pos += 1;
                    let Some(escape) = self.peek() else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 1;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{08}',
                        b'f' => '\u{0C}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error("invalid escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0x00..=0x1F => return Err(self.error("control character in string")),
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error("lone surrogate in unicode escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone surrogate in unicode escape"));
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone surrogate in unicode escape")),
            other => u32::from(other),
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Json, parse};

    fn ok(input: &str, compact: &str) {
        let value = parse(input.as_bytes()).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(value.to_compact_string(), compact, "input {input:?}");
        // The compact form is valid JSON for serde_json too.
        let _: serde_json::Value = serde_json::from_str(compact).unwrap();
    }

    fn err(input: &[u8], what: &str) {
        let e = parse(input).expect_err(&String::from_utf8_lossy(input));
        assert!(
            e.to_string().starts_with(what),
            "input {:?}: got {e}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn accepts_and_writes_back_compactly() {
        let table = [
            ("{}", "{}"),
            (" \t\r\n{ } \n", "{}"),
            (r#"{"b":1,"a":2}"#, r#"{"b":1,"a":2}"#),
            (
                r#"{ "x" : [ 1 , 2.50 , -0 , 1E3 , 1e-2 ] }"#,
                r#"{"x":[1,2.50,-0,1E3,1e-2]}"#,
            ),
            (
                r#"{"s":"\u00e9\ud83d\ude00\n\"\\\/"}"#,
                r#"{"s":"é😀\n\"\\/"}"#,
            ),
            (r#"{"c":"\u0001"}"#, r#"{"c":"\u0001"}"#),
            (
                r#"{"n":null,"t":true,"f":false}"#,
                r#"{"n":null,"t":true,"f":false}"#,
            ),
            (r#"{"a":{"a":{"a":1}}}"#, r#"{"a":{"a":{"a":1}}}"#),
            (r#"{"Name":1,"name":2}"#, r#"{"Name":1,"name":2}"#),
            ("9223372036854775807", "9223372036854775807"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("[]", "[]"),
            ("\"x\"", "\"x\""),
        ];
        for (input, compact) in table {
            ok(input, compact);
        }
    }

    #[test]
    fn refuses_bad_documents() {
        let table: &[(&[u8], &str)] = &[
            (b"", "empty document"),
            (b"   ", "empty document"),
            (b"{", "expected a string key"),
            (b"{\"a\":1", "expected ',' or '}'"),
            (b"{\"a\":1,}", "expected a string key"),
            (b"[1,]", "expected a JSON value"),
            (b"{} x", "trailing characters"),
            (b"{}{}", "trailing characters"),
            (b"{\"a\":1,\"a\":2}", "duplicate key"),
            (b"{\"o\":{\"k\":1,\"k\":1}}", "duplicate key"),
            (b"[{\"k\":1,\"k\":1}]", "duplicate key"),
            (b"{\"a\":\"\\u0061\",\"\\u0061\":1}", "duplicate key"),
            (b"9223372036854775808", "integer does not fit"),
            (b"-9223372036854775809", "integer does not fit"),
            (b"{\"a\":[99999999999999999999]}", "integer does not fit"),
            (b"1e400", "number out of range"),
            (b"01", "trailing characters"),
            (b"1.", "invalid number"),
            (b".5", "expected a JSON value"),
            (b"-", "invalid number"),
            (b"1e", "invalid number"),
            (b"+1", "expected a JSON value"),
            (b"NaN", "expected a JSON value"),
            (b"tru", "invalid literal"),
            (b"nul", "invalid literal"),
            (b"\"\\ud800\"", "lone surrogate"),
            (b"\"\\udc00\"", "lone surrogate"),
            (b"\"\\ud800\\u0041\"", "lone surrogate"),
            (b"\"\\x\"", "invalid escape"),
            (b"\"\\u12\"", "invalid unicode escape"),
            (b"\"a\nb\"", "control character"),
            (b"\"abc", "unterminated string"),
            (b"\"\xff\"", "invalid UTF-8"),
            (b"\xef\xbb\xbf{}", "expected a JSON value"),
            (b"{'a':1}", "expected a string key"),
        ];
        for (input, what) in table {
            err(input, what);
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(128) + &"]".repeat(128);
        assert!(parse(deep.as_bytes()).is_ok());
        let too_deep = "[".repeat(129) + &"]".repeat(129);
        err(too_deep.as_bytes(), "nesting too deep");
        let very_deep = "[".repeat(100_000);
        err(very_deep.as_bytes(), "nesting too deep");
    }

    #[test]
    fn numbers_and_nulls() {
        let v = parse(br#"{"i":5,"f":5.0,"e":5e0,"n":-7}"#).unwrap();
        let Json::Object(entries) = v else {
            panic!("object")
        };
        let ints: Vec<Option<i64>> = entries
            .iter()
            .map(|(_, v)| match v {
                Json::Number(n) => n.as_integer(),
                _ => panic!("number"),
            })
            .collect();
        assert_eq!(ints, [Some(5), None, None, Some(-7)]);
        assert!(parse(br#"{"a":[1,{"b":null}]}"#).unwrap().contains_null());
        assert!(!parse(br#"{"a":[1,{"b":"null"}]}"#).unwrap().contains_null());
    }
}
