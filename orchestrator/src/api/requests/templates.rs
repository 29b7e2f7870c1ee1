//! Template inputs (§4.2, §4.5–§4.7): create, startup files, modules and libraries.

use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::extract::{FromJsonBody, Members, check_text, is_blank, required};
use crate::api::paths::clean_relative_path;

// ---------------------------------------------------------------------------------------------
// Templates (§4.2)

/// `POST /templates`.
#[derive(Debug, ToSchema)]
pub(crate) struct CreateTemplate {
    /// 1–128 characters, not blank; stored as sent.
    #[schema(min_length = 1, max_length = 128)]
    pub(crate) name: String,
    /// Not blank when given; `None` means the build's engine. Equality with the build's engine is
    /// the handler's `422 ENGINE_UNSUPPORTED` check.
    #[schema(value_type = String, required = false, min_length = 1)]
    pub(crate) engine: Option<String>,
}

impl FromJsonBody for CreateTemplate {
    const FIELDS: &'static [&'static str] = &["name", "engine"];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        let name = m.string("name")?;
        let engine = m.string("engine")?;
        let name = required(name, "name")?;
        check_text(&name, "name", 1, 128)?;
        if engine.as_deref().is_some_and(is_blank) {
            return Err(ApiError::validation("engine", "must not be blank"));
        }
        Ok(Self { name, engine })
    }
}

// ---------------------------------------------------------------------------------------------
// Startup files, modules, libraries (§4.5–§4.7)

/// `POST /templates/{id}/startup-files`.
#[derive(Debug, ToSchema)]
pub(crate) struct AddStartupFile {
    /// The path as sent.
    pub(crate) path: String,
    /// Any 32-bit signed integer, default 0.
    #[schema(required = false, default = 0)]
    pub(crate) order_index: i32,
    /// The mode as sent (default `"eval"`); not blank.
    #[schema(rename = "mode", required = false, default = "eval", min_length = 1)]
    pub(crate) requested_mode: String,
}

impl AddStartupFile {
    /// The `422 INVALID_PATH` step: the cleaned relative path (§8.4 lexical rules).
    pub(crate) fn check_path(&self) -> Result<String, ApiError> {
        lexical_path(&self.path)
    }

    /// The `422 STARTUP_MODE_UNSUPPORTED` step: the mode, trimmed and lowercased, must be `eval`.
    pub(crate) fn check_mode(&self) -> Result<(), ApiError> {
        if self.requested_mode.trim().to_lowercase() == "eval" {
            Ok(())
        } else {
            Err(ApiError::StartupModeUnsupported {
                requested_mode: self.requested_mode.clone(),
                supported_modes: vec!["eval".to_owned()],
            })
        }
    }
}

impl FromJsonBody for AddStartupFile {
    const FIELDS: &'static [&'static str] = &["path", "order_index", "mode"];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        let path = m.string("path")?;
        let order_index = m.integer("order_index")?;
        let mode = m.string("mode")?;
        let path = required(path, "path")?;
        let order_index = match order_index {
            None => 0,
            Some(i) => i32::try_from(i).map_err(|_| {
                ApiError::validation("order_index", "must be a 32-bit signed integer")
            })?,
        };
        if mode.as_deref().is_some_and(is_blank) {
            return Err(ApiError::validation("mode", "must not be blank"));
        }
        Ok(Self {
            path,
            order_index,
            requested_mode: mode.unwrap_or_else(|| "eval".to_owned()),
        })
    }
}

/// Applies the lexical path rules; a failure is `422 INVALID_PATH` with the path as sent.
pub(crate) fn lexical_path(path: &str) -> Result<String, ApiError> {
    clean_relative_path(path).map_err(|reason| ApiError::InvalidPath {
        path: path.to_owned(),
        reason,
    })
}

/// Module names as stored and compared: trimmed and lowercased (§4.6; also for `DELETE …/modules/{name}`).
pub(crate) fn normalize_module_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// `POST /templates/{id}/modules`.
#[derive(Debug, ToSchema)]
pub(crate) struct AddModule {
    /// Normalised (trimmed, lowercased), not blank. The catalog check is the handler's 422 step.
    pub(crate) name: String,
}

impl FromJsonBody for AddModule {
    const FIELDS: &'static [&'static str] = &["name"];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        let name = required(m.string("name")?, "name")?;
        if is_blank(&name) {
            return Err(ApiError::validation("name", "must not be blank"));
        }
        Ok(Self {
            name: normalize_module_name(&name),
        })
    }
}

/// `POST /templates/{id}/libraries`.
#[derive(Debug, ToSchema)]
pub(crate) struct AddLibrary {
    /// As sent (`id` or `id@version`), not blank.
    pub(crate) name: String,
}

/// A parsed library reference: the normalised catalog id and the optional explicit version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LibrarySpec {
    pub(crate) id: String,
    pub(crate) version: Option<String>,
}

impl LibrarySpec {
    /// Parses `id` or `id@version`: the id is trimmed and lowercased, the version must match
    /// `^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`. Failures are `422 LIBRARY_UNKNOWN` naming
    /// `name` as sent; catalog membership is the caller's check.
    pub(crate) fn parse(name: &str) -> Result<Self, ApiError> {
        let unknown = || ApiError::LibraryUnknown {
            name: name.to_owned(),
        };
        let (id, version) = match name.trim().split_once('@') {
            Some((id, version)) => (id, Some(version)),
            None => (name, None),
        };
        let id = id.trim().to_lowercase();
        if id.is_empty() || version.is_some_and(|v| !is_library_version(v)) {
            return Err(unknown());
        }
        Ok(Self {
            id,
            version: version.map(str::to_owned),
        })
    }

    /// The stored entry: `id` or `id@version`.
    pub(crate) fn entry(&self) -> String {
        match &self.version {
            Some(version) => format!("{}@{version}", self.id),
            None => self.id.clone(),
        }
    }
}

/// The id part of a library name, normalised (for `DELETE …/libraries/{name}`, no catalog check).
pub(crate) fn library_id_of(name: &str) -> String {
    let name = name.trim();
    name.split_once('@')
        .map_or(name, |(id, _)| id)
        .trim()
        .to_lowercase()
}

pub(crate) fn is_library_version(v: &str) -> bool {
    let (core, pre) = match v.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (v, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && pre.is_none_or(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
}

impl AddLibrary {
    /// The `422 LIBRARY_UNKNOWN` syntax step (see [`LibrarySpec::parse`]).
    pub(crate) fn spec(&self) -> Result<LibrarySpec, ApiError> {
        LibrarySpec::parse(&self.name)
    }
}

impl FromJsonBody for AddLibrary {
    const FIELDS: &'static [&'static str] = &["name"];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        let name = required(m.string("name")?, "name")?;
        if is_blank(&name) {
            return Err(ApiError::validation("name", "must not be blank"));
        }
        Ok(Self { name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::extract::decode_body;
    use crate::api::extract::tests::Outcome::{Invalid, Ok as Fine};
    use crate::api::extract::tests::{check_body as check, v};
    use crate::api::paths::PathReason;

    #[test]
    fn create_template() {
        check::<CreateTemplate>(&[
            (r#"{"name":"analytics"}"#, Fine),
            (r#"{"name":"analytics","engine":"quickjs"}"#, Fine),
            (r#"{"name":"a","engine":"V8 "}"#, Fine),
            (r#"{"name":"ü"}"#, Fine),
            (&format!(r#"{{"name":"{}"}}"#, "é".repeat(128)), Fine),
            (&format!(r#"{{"name":"{}"}}"#, "é".repeat(129)), v("name")),
            ("{}", v("name")),
            (r#"{"engine":"quickjs"}"#, v("name")),
            (r#"{"name":""}"#, v("name")),
            (r#"{"name":" \t "}"#, v("name")),
            (r#"{"name":"a","engine":""}"#, v("engine")),
            (r#"{"name":"a","engine":"  "}"#, v("engine")),
            (r#"{"name":null}"#, Invalid),
            (r#"{"name":"a","engine":null}"#, Invalid),
            (r#"{"name":["a"]}"#, Invalid),
            (r#"{"name":"a","Engine":"quickjs"}"#, Invalid),
            (r#"{"name":"a","name":"a"}"#, Invalid),
            (r#"{"name":"a"} {}"#, Invalid),
            (r#"["name"]"#, Invalid),
        ]);
        let t = decode_body::<CreateTemplate>(br#"{"name":" x ","engine":"quickjs"}"#).unwrap();
        assert_eq!(
            (t.name.as_str(), t.engine.as_deref()),
            (" x ", Some("quickjs"))
        );
    }

    #[test]
    fn startup_files() {
        check::<AddStartupFile>(&[
            (r#"{"path":"init.js"}"#, Fine),
            (
                r#"{"path":"init.js","order_index":-2147483648,"mode":" EVAL "}"#,
                Fine,
            ),
            (r#"{"path":"init.js","order_index":2147483647}"#, Fine),
            (
                r#"{"path":"init.js","order_index":2147483648}"#,
                v("order_index"),
            ),
            (
                r#"{"path":"init.js","order_index":-2147483649}"#,
                v("order_index"),
            ),
            (r#"{"path":"init.js","order_index":1.0}"#, Invalid),
            (r#"{"path":"init.js","order_index":"1"}"#, Invalid),
            (r#"{"path":"init.js","mode":null}"#, Invalid),
            (r#"{"path":"init.js","mode":" "}"#, v("mode")),
            (r#"{"path":"init.js","mode":"module"}"#, Fine),
            // A bad path is decoded fine: it is a 422 at its own step.
            (r#"{"path":""}"#, Fine),
            (r#"{"path":"/abs.js"}"#, Fine),
            (r#"{"path":null}"#, Invalid),
            ("{}", v("path")),
            (r#"{"order_index":1}"#, v("path")),
        ]);
        let table: &[(&str, Result<&str, PathReason>)] = &[
            ("./a.js", Ok("a.js")),
            ("lib/../b.js", Ok("b.js")),
            ("", Err(PathReason::Empty)),
            ("  ", Err(PathReason::Empty)),
            (".", Err(PathReason::Empty)),
            ("/x.js", Err(PathReason::Absolute)),
            ("a/../../x", Err(PathReason::Traversal)),
        ];
        for (path, expected) in table {
            let body = serde_json::json!({ "path": path }).to_string();
            let req = decode_body::<AddStartupFile>(body.as_bytes()).unwrap();
            match (req.check_path(), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want),
                (Err(ApiError::InvalidPath { path: p, reason }), Err(want)) => {
                    assert_eq!((p.as_str(), reason), (*path, *want));
                }
                (got, want) => panic!("{path:?}: {got:?} vs {want:?}"),
            }
        }
        let req = decode_body::<AddStartupFile>(br#"{"path":"a.js"}"#).unwrap();
        assert_eq!((req.order_index, req.requested_mode.as_str()), (0, "eval"));
        assert!(req.check_mode().is_ok());
        let req = decode_body::<AddStartupFile>(br#"{"path":"a.js","mode":"\tEvAl\n"}"#).unwrap();
        assert!(req.check_mode().is_ok());
        let req = decode_body::<AddStartupFile>(br#"{"path":"a.js","mode":"Module"}"#).unwrap();
        let err = req.check_mode().unwrap_err();
        assert_eq!(err.code(), "STARTUP_MODE_UNSUPPORTED");
        assert_eq!(
            err.details(),
            serde_json::json!({"requested_mode": "Module", "supported_modes": ["eval"]})
        );
    }

    #[test]
    fn modules_and_libraries() {
        check::<AddModule>(&[
            (r#"{"name":"fs"}"#, Fine),
            (r#"{"name":" FS "}"#, Fine),
            (r#"{"name":""}"#, v("name")),
            (r#"{"name":"  "}"#, v("name")),
            ("{}", v("name")),
            (r#"{"name":null}"#, Invalid),
            (r#"{"name":"fs","kind":"x"}"#, Invalid),
        ]);
        assert_eq!(
            decode_body::<AddModule>(br#"{"name":" Exec "}"#)
                .unwrap()
                .name,
            "exec"
        );
        assert_eq!(normalize_module_name(" DataBase\t"), "database");
        check::<AddLibrary>(&[
            (r#"{"name":"lodash"}"#, Fine),
            (r#"{"name":"nope@x"}"#, Fine),
            (r#"{"name":" "}"#, v("name")),
            ("{}", v("name")),
            (r#"{"name":1}"#, Invalid),
        ]);
        type Parsed<'a> = Option<(&'a str, Option<&'a str>)>;
        let table: &[(&str, Parsed<'_>)] = &[
            ("lodash", Some(("lodash", None))),
            (" LoDash ", Some(("lodash", None))),
            ("dayjs@1.11.10", Some(("dayjs", Some("1.11.10")))),
            (" DayJS @1.11.10 ", Some(("dayjs", Some("1.11.10")))),
            ("x@1.2.3-rc.1", Some(("x", Some("1.2.3-rc.1")))),
            ("x@1.2.3-a-b.C", Some(("x", Some("1.2.3-a-b.C")))),
            ("x@1.2", None),
            ("x@1.2.3.4", None),
            ("x@v1.2.3", None),
            ("x@1.2.3-", None),
            ("x@1.2.3+b", None),
            ("x@1.2.3-a_b", None),
            ("x@", None),
            ("@1.2.3", None),
            ("x@1.2.3@1.2.3", None),
        ];
        for (name, expected) in table {
            let got = LibrarySpec::parse(name);
            match (got, expected) {
                (Ok(spec), Some((id, version))) => {
                    assert_eq!(
                        (spec.id.as_str(), spec.version.as_deref()),
                        (*id, *version),
                        "{name}"
                    );
                }
                (Err(ApiError::LibraryUnknown { name: n }), None) => assert_eq!(n, *name),
                (got, want) => panic!("{name:?}: {got:?} vs {want:?}"),
            }
        }
        assert_eq!(
            LibrarySpec::parse("dayjs@1.11.10").unwrap().entry(),
            "dayjs@1.11.10"
        );
        assert_eq!(LibrarySpec::parse(" Lodash").unwrap().entry(), "lodash");
        assert_eq!(library_id_of(" DayJS@1.11.10"), "dayjs");
        assert_eq!(library_id_of("lodash"), "lodash");
    }
}
