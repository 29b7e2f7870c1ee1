//! Execution inputs (§4.9): REPL, run-file, and the execution and event list queries.

use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[cfg(test)]
use super::templates::lexical_path;
use crate::api::error::ApiError;
use crate::api::extract::{
    FromJsonBody, FromQuery, Members, QueryParams, is_env_name, parse_id, required,
};
use crate::api::json::Json;

// ---------------------------------------------------------------------------------------------
// Executions (§4.9)

/// `POST /executions/repl`.
#[derive(Debug, ToSchema)]
pub(crate) struct ReplRequest {
    pub(crate) session_id: Uuid,
    /// Non-empty (whitespace-only is allowed).
    #[schema(min_length = 1)]
    pub(crate) input: String,
}

impl FromJsonBody for ReplRequest {
    const FIELDS: &'static [&'static str] = &["session_id", "input"];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        let session_id = m.string("session_id")?;
        let input = m.string("input")?;
        let session_id = parse_id("session_id", &required(session_id, "session_id")?)?;
        let input = required(input, "input")?;
        if input.is_empty() {
            return Err(ApiError::validation("input", "must not be empty"));
        }
        Ok(Self { session_id, input })
    }
}

/// `POST /executions/run-file`.
#[derive(Debug, ToSchema)]
pub(crate) struct RunFileRequest {
    pub(crate) session_id: Uuid,
    /// The path as sent; [`RunFileRequest::check_path`] is the `422 INVALID_PATH` step.
    pub(crate) path: String,
    /// The `args` object as sent (compact, key order and number text kept); `{}` when omitted.
    #[schema(value_type = Object, required = false)]
    pub(crate) args: Box<RawValue>,
    /// The `env` entries in the order sent (keys match `^[A-Za-z_][A-Za-z0-9_]*$`).
    #[schema(value_type = HashMap<String, String>, required = false)]
    pub(crate) env: Vec<(String, String)>,
}

impl RunFileRequest {
    /// The cleaned relative path, or `422 INVALID_PATH` (a blank path included).
    #[cfg(test)]
    pub(crate) fn check_path(&self) -> Result<String, ApiError> {
        lexical_path(&self.path)
    }

    /// The `env` object as compact JSON (as stored and returned; `{}` when omitted).
    pub(crate) fn env_json(&self) -> Box<RawValue> {
        Json::Object(
            self.env
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect(),
        )
        .to_raw_value()
    }
}

impl FromJsonBody for RunFileRequest {
    const FIELDS: &'static [&'static str] = &["session_id", "path", "args", "env"];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        let session_id = m.string("session_id")?;
        let path = m.string("path")?;
        let args = m.any_object("args")?.unwrap_or(Json::Object(Vec::new()));
        let env = match m.any_object("env")? {
            Some(Json::Object(entries)) => entries
                .into_iter()
                .map(|(k, v)| match v {
                    Json::String(s) => Ok((k, s)),
                    other => Err(ApiError::invalid_request(format!(
                        "field env.{k} must be a string, not {}",
                        other.type_name()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        let session_id = parse_id("session_id", &required(session_id, "session_id")?)?;
        let path = required(path, "path")?;
        if let Some((key, _)) = env.iter().find(|(k, _)| !is_env_name(k)) {
            return Err(ApiError::validation(
                format!("env.{key}"),
                "is not a valid environment variable name",
            ));
        }
        Ok(Self {
            session_id,
            path,
            args: args.to_raw_value(),
            env,
        })
    }
}

/// `GET /executions?session_id=…&limit=…`.
#[derive(Debug, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListExecutions {
    pub(crate) session_id: Uuid,
    /// 1–1000, default 50.
    #[param(required = false, minimum = 1, maximum = 1000, default = 50)]
    pub(crate) limit: u32,
}

impl FromQuery for ListExecutions {
    const PARAMS: &'static [&'static str] = &["session_id", "limit"];

    fn from_query(params: QueryParams) -> Result<Self, ApiError> {
        let session_id = required(params.id("session_id")?, "session_id")?;
        let limit = params.integer("limit", 1, 1000)?.unwrap_or(50);
        Ok(Self {
            session_id,
            limit: u32::try_from(limit).unwrap_or(50),
        })
    }
}

/// `GET /executions/{id}/events?after_seq=…&limit=…&follow=…`.
#[derive(Debug, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListEvents {
    /// ≥ 0, default 0.
    #[param(required = false, minimum = 0, default = 0)]
    pub(crate) after_seq: i64,
    /// 1–10000, default 1000 (must be absent when following).
    #[param(required = false, minimum = 1, maximum = 10000, default = 1000)]
    pub(crate) limit: u32,
    /// Server-Sent Events stream (§7.7); `limit` must then be absent.
    #[param(required = false, default = false)]
    pub(crate) follow: bool,
}

impl FromQuery for ListEvents {
    const PARAMS: &'static [&'static str] = &["after_seq", "limit", "follow"];

    fn from_query(params: QueryParams) -> Result<Self, ApiError> {
        let after_seq = params.integer("after_seq", 0, i64::MAX)?.unwrap_or(0);
        let limit = params.integer("limit", 1, 10_000)?;
        let follow = params.bool("follow")?.unwrap_or(false);
        if follow && limit.is_some() {
            return Err(ApiError::validation(
                "limit",
                "must be absent when follow=true",
            ));
        }
        Ok(Self {
            after_seq,
            limit: limit.and_then(|l| u32::try_from(l).ok()).unwrap_or(1000),
            follow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::extract::tests::Outcome::{Invalid, Ok as Fine};
    use crate::api::extract::tests::{check_body as check, check_query, v};
    use crate::api::extract::{decode_body, decode_query};

    const SID: &str = "5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29";

    #[test]
    fn repl() {
        check::<ReplRequest>(&[
            (&format!(r#"{{"session_id":"{SID}","input":"1+1"}}"#), Fine),
            (&format!(r#"{{"session_id":"{SID}","input":"   "}}"#), Fine),
            (
                &format!(r#"{{"session_id":"{SID}","input":""}}"#),
                v("input"),
            ),
            (&format!(r#"{{"session_id":"{SID}"}}"#), v("input")),
            (r#"{"input":"1"}"#, v("session_id")),
            (r#"{"session_id":"x","input":"1"}"#, v("session_id")),
            (r#"{"session_id":"x","input":1}"#, Invalid),
            (
                &format!(r#"{{"session_id":"{SID}","input":null}}"#),
                Invalid,
            ),
            (
                &format!(r#"{{"session_id":"{SID}","input":"1","timeout":5}}"#),
                Invalid,
            ),
        ]);
    }

    #[test]
    fn run_file() {
        let b = |rest: &str| format!(r#"{{"session_id":"{SID}","path":"main.js"{rest}}}"#);
        check::<RunFileRequest>(&[
            (&b(""), Fine),
            (&b(r#","args":{},"env":{}"#), Fine),
            (&b(r#","args":{"a":null,"b":[null,{"c":null}]}"#), Fine),
            (&b(r#","args":{"n":9223372036854775808}"#), Invalid),
            (&b(r#","args":{"a":1,"a":2}"#), Invalid),
            (&b(r#","args":{"o":{"k":1,"k":1}}"#), Invalid),
            (&b(r#","args":null"#), Invalid),
            (&b(r#","args":[]"#), Invalid),
            (&b(r#","args":"x""#), Invalid),
            (&b(r#","env":{"MY_VAR":"1","_x":""}"#), Fine),
            (&b(r#","env":{"A":"1","A":"2"}"#), Invalid),
            (&b(r#","env":{"A":1}"#), Invalid),
            (&b(r#","env":{"A":null}"#), Invalid),
            (&b(r#","env":{"A":{}}"#), Invalid),
            (&b(r#","env":null"#), Invalid),
            (&b(r#","env":["A"]"#), Invalid),
            (&b(r#","env":{"1BAD":"x"}"#), v("env.1BAD")),
            (&b(r#","env":{"OK":"x","MY-VAR":"x"}"#), v("env.MY-VAR")),
            (&b(r#","env":{"":"x"}"#), v("env.")),
            (&b(r#","env":{"1BAD":5}"#), Invalid),
            (&format!(r#"{{"session_id":"{SID}","path":""}}"#), Fine),
            (&format!(r#"{{"session_id":"{SID}"}}"#), v("path")),
            (r#"{"path":"a.js"}"#, v("session_id")),
            (
                r#"{"session_id":"nope","path":"a.js","env":{"1":"x"}}"#,
                v("session_id"),
            ),
            (&format!(r#"{{"session_id":"{SID}","path":null}}"#), Invalid),
            (
                &format!(r#"{{"session_id":"{SID}","path":"a","Args":{{}}}}"#),
                Invalid,
            ),
        ]);
        let req = decode_body::<RunFileRequest>(
            b(r#","args":{ "z": 1.50, "a": [true, null], "s": "\u00e9" },"env":{"B":"2","A":"1"}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(req.args.get(), r#"{"z":1.50,"a":[true,null],"s":"é"}"#);
        assert_eq!(req.env_json().get(), r#"{"B":"2","A":"1"}"#);
        assert_eq!(req.check_path().unwrap(), "main.js");
        let req = decode_body::<RunFileRequest>(b("").as_bytes()).unwrap();
        assert_eq!((req.args.get(), req.env_json().get()), ("{}", "{}"));
        let req = decode_body::<RunFileRequest>(
            format!(r#"{{"session_id":"{SID}","path":"  "}}"#).as_bytes(),
        )
        .unwrap();
        let err = req.check_path().unwrap_err();
        assert_eq!(
            err.details(),
            serde_json::json!({"path": "  ", "reason": "empty"})
        );
    }

    #[test]
    fn list_executions() {
        check_query::<ListExecutions>(&[
            (&format!("session_id={SID}"), Fine),
            (&format!("session_id={SID}&limit=1"), Fine),
            (
                &format!("limit=1000&session_id={}", SID.to_uppercase()),
                Fine,
            ),
            ("", v("session_id")),
            ("limit=5", v("session_id")),
            ("session_id=nope", v("session_id")),
            (&format!("session_id={SID}&limit=0"), v("limit")),
            (&format!("session_id={SID}&limit=1001"), v("limit")),
            (&format!("session_id={SID}&limit=-1"), v("limit")),
            (&format!("session_id={SID}&limit=5.0"), v("limit")),
            (&format!("session_id={SID}&limit="), v("limit")),
            (&format!("session_id={SID}&limit=1&limit=2"), v("limit")),
            (&format!("session_id={SID}&after_seq=1"), v("after_seq")),
            (
                &format!("session_id={SID}&session_id={SID}"),
                v("session_id"),
            ),
        ]);
        let q = decode_query::<ListExecutions>(Some(&format!("session_id={SID}"))).unwrap();
        assert_eq!(q.limit, 50);
    }

    #[test]
    fn list_events() {
        check_query::<ListEvents>(&[
            ("", Fine),
            ("after_seq=0&limit=10000&follow=false", Fine),
            ("after_seq=9223372036854775807", Fine),
            ("follow=true", Fine),
            ("follow=true&after_seq=3", Fine),
            ("follow=true&limit=5", v("limit")),
            ("limit=5&follow=true", v("limit")),
            ("after_seq=-1", v("after_seq")),
            ("after_seq=9223372036854775808", v("after_seq")),
            ("after_seq=x", v("after_seq")),
            ("limit=0", v("limit")),
            ("limit=10001", v("limit")),
            ("follow=1", v("follow")),
            ("follow=True", v("follow")),
            ("follow=", v("follow")),
            ("follow", v("follow")),
            ("session_id=x", v("session_id")),
        ]);
        let q = decode_query::<ListEvents>(None).unwrap();
        assert_eq!(
            q,
            ListEvents {
                after_seq: 0,
                limit: 1000,
                follow: false
            }
        );
        let q = decode_query::<ListEvents>(Some("follow=true&after_seq=7")).unwrap();
        assert_eq!(
            q,
            ListEvents {
                after_seq: 7,
                limit: 1000,
                follow: true
            }
        );
    }
}
