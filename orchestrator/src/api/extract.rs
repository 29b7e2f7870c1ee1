//! Request input per spec §1: the 1 MiB body limit, strict JSON bodies, strict query strings,
//! path parameters and id syntax. Decoding failures are `INVALID_REQUEST`, rule breaks `VALIDATION_ERROR`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{HeaderMap, header, request::Parts};
use http_body_util::BodyExt;
use uuid::Uuid;

use super::error::ApiError;
use super::json::{self, Json};

/// Largest accepted request body, in bytes (1 MiB).
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge {
        limit_bytes: MAX_BODY_BYTES as u64,
    }
}

/// How much of an over-limit body is read and thrown away before the 413 is sent, so that a
/// client still writing its body reads the answer instead of a reset connection.
const DRAIN_CAP: u64 = 64 << 20;

/// How long a request body may go without a byte arriving: a client that stops sending its
/// body half way must not hold its connection (and, before auth answers, any connection) open
/// for ever. `DRAIN_IDLE` is the shorter wait for a body whose answer is already decided.
const BODY_IDLE: Duration = Duration::from_secs(30);
const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// Reads and drops a body the daemon will not use, up to [`DRAIN_CAP`] bytes, until it ends or
/// stalls for [`DRAIN_IDLE`].
pub(crate) async fn drain_body(mut body: Body) {
    let mut seen: u64 = 0;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(DRAIN_IDLE, body.frame()).await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > DRAIN_CAP {
                break;
            }
        }
    }
}

/// Reads a whole request body of at most [`MAX_BODY_BYTES`] (`413 PAYLOAD_TOO_LARGE` otherwise).
/// An over-limit body is drained (up to [`DRAIN_CAP`]) before answering.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_CAP) {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    let mut over = declared.is_some_and(|n| n > MAX_BODY_BYTES as u64);
    loop {
        let Ok(frame) = tokio::time::timeout(BODY_IDLE, body.frame()).await else {
            return Err(if over {
                too_large()
            } else {
                ApiError::invalid_request("the request body stopped arriving")
            });
        };
        let Some(frame) = frame else {
            break;
        };
        let Ok(frame) = frame else {
            // A body already known to be too large stays "too large" even if it was cut short.
            if over {
                return Err(too_large());
            }
            return Err(ApiError::invalid_request("failed to read the request body"));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if seen > MAX_BODY_BYTES as u64 {
            over = true;
        }
        if over {
            if seen > DRAIN_CAP {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if over {
        return Err(too_large());
    }
    Ok(buf.freeze())
}

// ---------------------------------------------------------------------------------------------
// JSON bodies

/// A request body type decoded by [`StrictJson`] / [`decode_body`].
///
/// Implementations first decode every member (type errors → `INVALID_REQUEST`) and only then
/// validate (rule breaks → `VALIDATION_ERROR`), so decoding errors always win (§1 check order).
pub(crate) trait FromJsonBody: Sized {
    /// The documented members; any other key (exact-case match) is an unknown field.
    const FIELDS: &'static [&'static str];

    /// Decodes and validates the top-level object (its keys already checked against `FIELDS`).
    fn from_json(members: Members) -> Result<Self, ApiError>;
}

/// Extractor: reads the body (1 MiB limit) and decodes it strictly into `T`.
///
/// Body endpoints document no query parameters, so any query parameter is then refused
/// (`VALIDATION_ERROR`), after the body has been decoded and validated.
#[derive(Debug)]
pub(crate) struct StrictJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: FromJsonBody,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body).await?;
        let value = decode_body(&bytes)?;
        decode_query::<NoQuery>(parts.uri.query())?;
        Ok(StrictJson(value))
    }
}

/// Strictly decodes a complete body into `T` (§1): one JSON object, nothing after it.
pub(crate) fn decode_body<T: FromJsonBody>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = json::parse(bytes).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let members = Members::new(value, "", T::FIELDS)?;
    T::from_json(members)
}

/// The members of one JSON object under decoding, after the unknown-field check.
///
/// Accessors remove the member and fail with `INVALID_REQUEST` on a wrong JSON type (`null`
/// included); an absent member is `Ok(None)` (required-ness is a validation rule).
#[derive(Debug)]
pub(crate) struct Members {
    /// Dotted path of this object, with a trailing `.` (`""` at the top level).
    prefix: String,
    entries: Vec<(String, Json)>,
}

impl Members {
    /// Checks that `value` is an object whose keys are all in `allowed`. `prefix` is the dotted
    /// path of the object with a trailing `.` (`""` for the body itself).
    pub(crate) fn new(value: Json, prefix: &str, allowed: &[&str]) -> Result<Self, ApiError> {
        let entries = match value {
            Json::Object(entries) => entries,
            other => {
                let what = if prefix.is_empty() {
                    "the body".to_owned()
                } else {
                    format!("field {}", prefix.trim_end_matches('.'))
                };
                return Err(ApiError::invalid_request(format!(
                    "{what} must be a JSON object, not {}",
                    other.type_name()
                )));
            }
        };
        if let Some((key, _)) = entries.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(ApiError::invalid_request(format!(
                "unknown field {prefix}{key}"
            )));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            entries,
        })
    }

    /// The dotted name of member `key`.
    pub(crate) fn field(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Removes and returns member `key` whatever its type (`null` included).
    pub(crate) fn take(&mut self, key: &str) -> Option<Json> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    fn wrong_type(&self, key: &str, expected: &str, got: &Json) -> ApiError {
        ApiError::invalid_request(format!(
            "field {} must be {expected}, not {}",
            self.field(key),
            got.type_name()
        ))
    }

    /// A string member.
    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", &other)),
        }
    }

    /// A boolean member.
    pub(crate) fn bool(&mut self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(key, "a boolean", &other)),
        }
    }

    /// An integer member: a number literal without fraction or exponent (`5.0` is refused).
    pub(crate) fn integer(&mut self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(Json::Number(n)) => match n.as_integer() {
                Some(i) => Ok(Some(i)),
                None => Err(ApiError::invalid_request(format!(
                    "field {} must be an integer without fraction or exponent",
                    self.field(key)
                ))),
            },
            Some(other) => Err(self.wrong_type(key, "an integer", &other)),
        }
    }

    /// A nested object member with documented keys `allowed`.
    pub(crate) fn object(
        &mut self,
        key: &str,
        allowed: &[&str],
    ) -> Result<Option<Members>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(value @ Json::Object(_)) => {
                Members::new(value, &format!("{}.", self.field(key)), allowed).map(Some)
            }
            Some(other) => Err(self.wrong_type(key, "an object", &other)),
        }
    }

    /// A free-form object member, returned whole (`Json::Object`).
    pub(crate) fn any_object(&mut self, key: &str) -> Result<Option<Json>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(value @ Json::Object(_)) => Ok(Some(value)),
            Some(other) => Err(self.wrong_type(key, "an object", &other)),
        }
    }

    /// An array-of-strings member.
    pub(crate) fn string_array(&mut self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(Json::Array(items)) => {
                let field = self.field(key);
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Json::String(s) => Ok(s),
                        other => Err(ApiError::invalid_request(format!(
                            "field {field}.{i} must be a string, not {}",
                            other.type_name()
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            Some(other) => Err(self.wrong_type(key, "an array", &other)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

/// Missing required member → `VALIDATION_ERROR` naming it.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::validation(field, "is required"))
}

/// "Blank": empty after trimming whitespace.
pub(crate) fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// A string of `min..=max` Unicode scalar values that is not blank.
pub(crate) fn check_text(value: &str, field: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(ApiError::validation(
            field,
            format!("must be {min} to {max} characters long"),
        ));
    }
    if is_blank(value) {
        return Err(ApiError::validation(field, "must not be blank"));
    }
    Ok(())
}

/// An integer within `min..=max`.
pub(crate) fn check_range(value: i64, field: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(
            field,
            format!("must be between {min} and {max}"),
        ))
    }
}

/// True for exactly 36 characters in the 8-4-4-4-12 hyphenated form with hex digits of either
/// case (version and variant bits are not checked).
pub(crate) fn is_strict_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Parses an id from a path, body or query value named `field`: strictly hyphenated UUID of
/// either case, else `VALIDATION_ERROR` (before any lookup). The result compares lowercased.
pub(crate) fn parse_id(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    if !is_strict_uuid(raw) {
        return Err(ApiError::validation(field, "must be a hyphenated UUID"));
    }
    Uuid::try_parse(raw).map_err(|_| ApiError::validation(field, "must be a hyphenated UUID"))
}

/// A string of ASCII `[A-Za-z_][A-Za-z0-9_]*` (environment variable names, §8.2 and §4.9).
pub(crate) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------------------
// Path parameters

/// Extractor: the route's path parameters, percent-decoded (the edge guarantees valid UTF-8).
///
/// It never fails on a value; handlers validate with [`PathParams::id`] after the body is
/// decoded, keeping the §1 order (decoding before validation).
#[derive(Debug, Clone, Default)]
pub(crate) struct PathParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(ApiError::internal)?;
        Ok(Self(
            raw.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }
}

impl PathParams {
    /// Builds params directly (tests, or handlers composing their own extractors).
    #[cfg(test)]
    pub(crate) fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The decoded value of parameter `name` (a missing name is a routing bug: `INTERNAL`).
    pub(crate) fn get(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::internal(format!("route has no path parameter {name}")))
    }

    /// Parameter `name` as an id (`VALIDATION_ERROR` with `field` = `name` when malformed).
    pub(crate) fn id(&self, name: &str) -> Result<Uuid, ApiError> {
        parse_id(name, self.get(name)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Query strings

/// A query-string type decoded by [`StrictQuery`].
pub(crate) trait FromQuery: Sized {
    /// The documented parameters; any other one is `VALIDATION_ERROR`.
    const PARAMS: &'static [&'static str];

    /// Validates the parsed parameters.
    fn from_query(params: QueryParams) -> Result<Self, ApiError>;
}

/// Extractor: strict query-string decoding into `T` (§1 "Query strings").
#[derive(Debug)]
pub(crate) struct StrictQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: FromQuery> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        decode_query(parts.uri.query()).map(StrictQuery)
    }
}

/// The query of an endpoint that documents no parameters: any parameter is `VALIDATION_ERROR`.
/// Handlers without a body or documented parameters take `StrictQuery<NoQuery>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoQuery;

impl FromQuery for NoQuery {
    const PARAMS: &'static [&'static str] = &[];

    fn from_query(_params: QueryParams) -> Result<Self, ApiError> {
        Ok(Self)
    }
}

/// The `Last-Event-ID` request header as an event cursor (§7.7): used only when it is a single
/// decimal integer ≥ 0, otherwise ignored.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all("last-event-id").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let text = value.to_str().ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Any decimal integer counts (spec §7.7); one past every seq is as good as u64::MAX.
    Some(text.parse().unwrap_or(u64::MAX))
}

/// Strictly decodes a raw query string (without `?`) into `T`.
pub(crate) fn decode_query<T: FromQuery>(raw: Option<&str>) -> Result<T, ApiError> {
    T::from_query(QueryParams::parse(raw, T::PARAMS)?)
}

/// Documented query parameters, each present at most once, percent-decoded.
#[derive(Debug, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Splits on `&` (empty pieces are ignored), requires `name=value`, decodes both (`+` is a
    /// space), and refuses unknown, repeated or malformed parameters, in order of appearance.
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for piece in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = match piece.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (piece, None),
            };
            let key = decode_component(raw_key).ok_or_else(|| {
                ApiError::validation(raw_key, "is not a well-formed query parameter")
            })?;
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::validation(key, "is not a known query parameter"));
            }
            if params.iter().any(|(k, _)| *k == key) {
                return Err(ApiError::validation(key, "is repeated"));
            }
            let value = raw_value.and_then(decode_component).ok_or_else(|| {
                ApiError::validation(&key, "is not a well-formed query parameter")
            })?;
            params.push((key, value));
        }
        Ok(Self(params))
    }

    /// The decoded value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An optional decimal integer within `min..=max`.
    pub(crate) fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let digits = raw.strip_prefix('-').unwrap_or(raw);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::validation(name, "must be an integer"));
        }
        let value = raw
            .parse::<i64>()
            .map_err(|_| ApiError::validation(name, format!("must be between {min} and {max}")))?;
        check_range(value, name, min, max).map(Some)
    }

    /// An optional `true` / `false`.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::validation(name, "must be true or false")),
        }
    }

    /// An optional id.
    pub(crate) fn id(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.get(name).map(|raw| parse_id(name, raw)).transpose()
    }
}

/// Percent-decodes `s` strictly: a `%` must start two hex digits, and the result must be UTF-8.
/// When `plus_is_space`, `+` decodes to a space (query strings).
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|h| (*h as char).to_digit(16))?;
                let lo = bytes.get(i + 2).and_then(|h| (*h as char).to_digit(16))?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn decode_component(s: &str) -> Option<String> {
    percent_decode(s, true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use axum::http::StatusCode;

    /// Outcome of a decode, reduced for table checks.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum Outcome {
        Ok,
        Invalid,
        Validation(String),
        Other(&'static str),
    }

    pub(crate) fn outcome<T>(result: &Result<T, ApiError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(ApiError::InvalidRequest { .. }) => Outcome::Invalid,
            Err(ApiError::ValidationError { field, .. }) => Outcome::Validation(field.clone()),
            Err(other) => Outcome::Other(other.code()),
        }
    }

    pub(crate) fn v(field: &str) -> Outcome {
        Outcome::Validation(field.to_owned())
    }

    /// Decodes each body of `table` as `T` and compares the outcome.
    pub(crate) fn check_body<T: FromJsonBody + std::fmt::Debug>(table: &[(&str, Outcome)]) {
        for (body, expected) in table {
            let got = decode_body::<T>(body.as_bytes());
            let name = std::any::type_name::<T>();
            assert_eq!(&outcome(&got), expected, "{name} body {body}: {got:?}");
        }
    }

    /// Decodes each query of `table` as `T` and compares the outcome.
    pub(crate) fn check_query<T: FromQuery + std::fmt::Debug>(table: &[(&str, Outcome)]) {
        for (query, expected) in table {
            let got = decode_query::<T>(Some(query));
            assert_eq!(&outcome(&got), expected, "query {query}: {got:?}");
        }
    }

    /// A toy body exercising every accessor.
    #[derive(Debug)]
    struct Toy;

    impl FromJsonBody for Toy {
        const FIELDS: &'static [&'static str] = &["name", "n", "flag", "inner", "free", "list"];

        fn from_json(mut m: Members) -> Result<Self, ApiError> {
            let name = m.string("name")?;
            let n = m.integer("n")?;
            let _flag = m.bool("flag")?;
            if let Some(mut inner) = m.object("inner", &["x"])? {
                inner.integer("x")?;
            }
            let _free = m.any_object("free")?;
            let _list = m.string_array("list")?;
            let name = required(name, "name")?;
            check_text(&name, "name", 1, 5)?;
            if let Some(n) = n {
                check_range(n, "n", 1, 10)?;
            }
            Ok(Toy)
        }
    }

    #[test]
    fn strict_decoding_table() {
        use Outcome::*;
        let table: &[(&str, Outcome)] = &[
            (r#"{"name":"a"}"#, Ok),
            (r#"  {"name":"a"}  "#, Ok),
            (
                r#"{"name":"a","n":10,"flag":true,"inner":{"x":-1},"free":{"k":null},"list":["x"]}"#,
                Ok,
            ),
            // §1 INVALID_REQUEST cases
            ("", Invalid),
            ("   ", Invalid),
            ("{", Invalid),
            ("not json", Invalid),
            ("[]", Invalid),
            ("\"name\"", Invalid),
            ("null", Invalid),
            ("42", Invalid),
            (r#"{"name":"a"} x"#, Invalid),
            (r#"{"name":"a"}{}"#, Invalid),
            (r#"{"Name":"a"}"#, Invalid),
            (r#"{"name":"a","extra":1}"#, Invalid),
            (r#"{"name":"a","name":"b"}"#, Invalid),
            (r#"{"name":"a","free":{"k":1,"k":2}}"#, Invalid),
            (r#"{"name":"a","inner":{"x":1,"x":1}}"#, Invalid),
            (r#"{"name":"a","inner":{"y":1}}"#, Invalid),
            (r#"{"name":"a","inner":{"X":1}}"#, Invalid),
            (r#"{"name":null}"#, Invalid),
            (r#"{"name":5}"#, Invalid),
            (r#"{"name":"a","n":"5"}"#, Invalid),
            (r#"{"name":"a","n":5.0}"#, Invalid),
            (r#"{"name":"a","n":5.5}"#, Invalid),
            (r#"{"name":"a","n":5e0}"#, Invalid),
            (r#"{"name":"a","n":null}"#, Invalid),
            (r#"{"name":"a","n":true}"#, Invalid),
            (r#"{"name":"a","n":9223372036854775808}"#, Invalid),
            (r#"{"name":"a","n":-9223372036854775809}"#, Invalid),
            (r#"{"name":"a","flag":"true"}"#, Invalid),
            (r#"{"name":"a","flag":null}"#, Invalid),
            (r#"{"name":"a","flag":1}"#, Invalid),
            (r#"{"name":"a","inner":null}"#, Invalid),
            (r#"{"name":"a","inner":[]}"#, Invalid),
            (r#"{"name":"a","free":"x"}"#, Invalid),
            (r#"{"name":"a","list":"x"}"#, Invalid),
            (r#"{"name":"a","list":[null]}"#, Invalid),
            (r#"{"name":"a","list":[1]}"#, Invalid),
            // decoding errors win over validation errors
            (r#"{"n":5.0}"#, Invalid),
            (r#"{"name":"","n":"x"}"#, Invalid),
            // VALIDATION_ERROR cases
            ("{}", v("name")),
            (r#"{"n":5}"#, v("name")),
            (r#"{"name":""}"#, v("name")),
            (r#"{"name":"   "}"#, v("name")),
            (r#"{"name":"abcdef"}"#, v("name")),
            (r#"{"name":"ééééé"}"#, Ok),
            (r#"{"name":"a","n":0}"#, v("n")),
            (r#"{"name":"a","n":-1}"#, v("n")),
            (r#"{"name":"a","n":11}"#, v("n")),
            (r#"{"name":"a","n":9223372036854775807}"#, v("n")),
        ];
        for (body, expected) in table {
            let got = decode_body::<Toy>(body.as_bytes());
            assert_eq!(&outcome(&got), expected, "body {body:?}: {got:?}");
        }
    }

    #[test]
    fn uuid_syntax() {
        let table = [
            ("5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29", true),
            ("5B0C2D1E-8F4A-4C3B-9E21-7A6D5C4B3A29", true),
            ("00000000-0000-0000-0000-000000000000", true),
            ("zb0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29", false),
            ("{5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29}", false),
            ("urn:uuid:5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29", false),
            ("5b0c2d1e8f4a4c3b9e217a6d5c4b3a29", false),
            (" 5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29", false),
            ("5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29 ", false),
            ("5b0c2d1e-8f4a4-c3b-9e21-7a6d5c4b3a29", false),
            ("5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a2", false),
            ("a/b", false),
            ("", false),
        ];
        for (input, expected) in table {
            assert_eq!(is_strict_uuid(input), expected, "{input:?}");
            assert_eq!(parse_id("session_id", input).is_ok(), expected, "{input:?}");
        }
        let upper = parse_id("x", "5B0C2D1E-8F4A-4C3B-9E21-7A6D5C4B3A29").unwrap();
        assert_eq!(upper.to_string(), "5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29");
        assert_eq!(outcome(&parse_id("template_id", "nope")), v("template_id"));
    }

    #[test]
    fn env_names() {
        for ok in ["A", "_", "MY_VAR", "a1", "_9"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "MY-VAR", "A B", "É", "A=B"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn percent_decoding() {
        let table = [
            ("abc", true, Some("abc")),
            ("%68ealth", false, Some("health")),
            ("a%2Fb", false, Some("a/b")),
            ("a%2fb", false, Some("a/b")),
            ("%C3%A9", false, Some("é")),
            ("a+b", false, Some("a+b")),
            ("a+b", true, Some("a b")),
            ("%2B", true, Some("+")),
            ("%", false, None),
            ("%2", false, None),
            ("%zz", false, None),
            ("%FF", false, None),
            ("%C3", false, None),
        ];
        for (input, plus, expected) in table {
            assert_eq!(
                percent_decode(input, plus).as_deref(),
                expected,
                "{input:?}"
            );
        }
    }

    struct ToyQuery {
        n: Option<i64>,
        b: Option<bool>,
        id: Option<Uuid>,
    }

    impl FromQuery for ToyQuery {
        const PARAMS: &'static [&'static str] = &["n", "b", "id"];

        fn from_query(params: QueryParams) -> Result<Self, ApiError> {
            Ok(Self {
                n: params.integer("n", 1, 10)?,
                b: params.bool("b")?,
                id: params.id("id")?,
            })
        }
    }

    #[test]
    fn query_table() {
        let table: &[(Option<&str>, Outcome)] = &[
            (None, Outcome::Ok),
            (Some(""), Outcome::Ok),
            (Some("n=1&b=true"), Outcome::Ok),
            (Some("n=1&&b=false&"), Outcome::Ok),
            (Some("%6E=5"), Outcome::Ok),
            (Some("id=5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29"), Outcome::Ok),
            (Some("x=1"), v("x")),
            (Some("N=1"), v("N")),
            (Some("n=1&n=1"), v("n")),
            (Some("n"), v("n")),
            (Some("n="), v("n")),
            (Some("n=abc"), v("n")),
            (Some("n=5.0"), v("n")),
            (Some("n=+5"), v("n")),
            (Some("n=0"), v("n")),
            (Some("n=11"), v("n")),
            (Some("n=-1"), v("n")),
            (Some("n=99999999999999999999"), v("n")),
            (Some("n=%zz"), v("n")),
            (Some("%zz=1"), v("%zz")),
            (Some("b=TRUE"), v("b")),
            (Some("b=1"), v("b")),
            (Some("id=nope"), v("id")),
            (
                Some("id=%7B5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29%7D"),
                v("id"),
            ),
        ];
        for (raw, expected) in table {
            let got = decode_query::<ToyQuery>(*raw);
            assert_eq!(&outcome(&got), expected, "query {raw:?}");
        }
        let q = decode_query::<ToyQuery>(Some("n=7&b=false")).unwrap();
        assert_eq!((q.n, q.b, q.id), (Some(7), Some(false), None));
    }

    #[tokio::test]
    async fn body_limit() {
        let headers = HeaderMap::new();
        let exact = vec![b' '; MAX_BODY_BYTES];
        assert_eq!(
            read_body(&headers, Body::from(exact)).await.unwrap().len(),
            MAX_BODY_BYTES
        );
        let over = vec![b' '; MAX_BODY_BYTES + 1];
        let err = read_body(&headers, Body::from(over)).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err.details(), serde_json::json!({"limit_bytes": 1_048_576}));
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, "2000000".parse().unwrap());
        let err = read_body(&declared, Body::from("{}")).await.unwrap_err();
        assert_eq!(err.code(), "PAYLOAD_TOO_LARGE");
    }

    #[test]
    fn no_query_and_last_event_id() {
        assert_eq!(outcome(&decode_query::<NoQuery>(None)), Outcome::Ok);
        assert_eq!(outcome(&decode_query::<NoQuery>(Some("&"))), Outcome::Ok);
        assert_eq!(outcome(&decode_query::<NoQuery>(Some("x=1"))), v("x"));
        let table = [
            (vec!["5"], Some(5)),
            (vec!["0"], Some(0)),
            (vec!["9223372036854775807"], Some(9_223_372_036_854_775_807)),
            (vec!["9223372036854775808"], Some(9_223_372_036_854_775_808)),
            (vec!["99999999999999999999999"], Some(u64::MAX)),
            (vec!["007"], Some(7)),
            (vec!["-1"], None),
            (vec!["+1"], None),
            (vec![" 1"], None),
            (vec!["1.0"], None),
            (vec![""], None),
            (vec!["x"], None),
            (vec!["1", "2"], None),
            (vec![], None),
        ];
        for (values, expected) in table {
            let mut headers = HeaderMap::new();
            for value in &values {
                headers.append("last-event-id", value.parse().unwrap());
            }
            assert_eq!(last_event_id(&headers), expected, "{values:?}");
        }
    }

    #[tokio::test]
    async fn strict_json_refuses_query_parameters_after_decoding() {
        let request = |uri: &str, body: &'static str| {
            Request::builder().uri(uri).body(Body::from(body)).unwrap()
        };
        let got = StrictJson::<Toy>::from_request(request("/t?x=1", r#"{"name":"a"}"#), &()).await;
        assert_eq!(outcome(&got), v("x"));
        let got = StrictJson::<Toy>::from_request(request("/t?x=1", "{"), &()).await;
        assert_eq!(outcome(&got), Outcome::Invalid);
        let got = StrictJson::<Toy>::from_request(request("/t?", r#"{"name":"a"}"#), &()).await;
        assert_eq!(outcome(&got), Outcome::Ok);
    }

    #[test]
    fn path_params() {
        let p = PathParams::from_pairs([("template_id", "a/b"), ("name", "fs")]);
        assert_eq!(outcome(&p.id("template_id")), v("template_id"));
        assert_eq!(p.get("name").unwrap(), "fs");
        assert_eq!(outcome(&p.get("nope")), Outcome::Other("INTERNAL"));
    }
}
