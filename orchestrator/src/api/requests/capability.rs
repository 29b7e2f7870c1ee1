//! `POST /templates/{id}/capabilities` input (§4.4) with the per-kind `name`/`config` rules of §8.2.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::extract::{FromJsonBody, Members, check_text, is_env_name, required};
use crate::api::json::Json;

/// Most entries in a `module`/`exec` capability's `allow` list.
pub(crate) const MAX_EXEC_ALLOW: usize = 64;

/// A capability kind (§8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum CapabilityKind {
    Module,
    Global,
    Fs,
    Net,
    Env,
}

impl CapabilityKind {
    const ALL: [Self; 5] = [Self::Module, Self::Global, Self::Fs, Self::Net, Self::Env];

    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Module => "module",
            Self::Global => "global",
            Self::Fs => "fs",
            Self::Net => "net",
            Self::Env => "env",
        }
    }

    /// Parses an exact (case-sensitive) wire name.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds whose `config` is free-form and may hold `null` values (§1).
    fn config_allows_null(kind: Option<&str>) -> bool {
        matches!(kind, Some("module" | "global"))
    }
}

/// A validated capability to add (`POST /templates/{id}/capabilities`).
#[derive(Debug, ToSchema)]
pub(crate) struct AddCapability {
    pub(crate) kind: CapabilityKind,
    /// 1–128 characters, not blank, plus the kind's rule; stored as sent.
    #[schema(min_length = 1, max_length = 128)]
    pub(crate) name: String,
    /// Default `true`.
    #[schema(required = false, default = true)]
    pub(crate) enabled: bool,
    /// The `config` object as sent (compact, key order kept); `{}` when omitted.
    #[schema(value_type = Object, required = false)]
    pub(crate) config: Box<RawValue>,
}

impl FromJsonBody for AddCapability {
    const FIELDS: &'static [&'static str] = &["kind", "name", "enabled", "config"];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        let kind = m.string("kind")?;
        let name = m.string("name")?;
        let enabled = m.bool("enabled")?;
        let config = m.any_object("config")?.unwrap_or(Json::Object(Vec::new()));
        if !CapabilityKind::config_allows_null(kind.as_deref()) && config.contains_null() {
            return Err(ApiError::invalid_request(
                "null is allowed in config only for module and global capabilities",
            ));
        }
        let kind = required(kind, "kind")?;
        let kind = CapabilityKind::parse(&kind).ok_or_else(|| {
            ApiError::validation("kind", "must be module, global, fs, net or env")
        })?;
        let name = required(name, "name")?;
        check_text(&name, "name", 1, 128)?;
        check_name(kind, &name)?;
        check_config(kind, &name, &config)?;
        Ok(Self {
            kind,
            name,
            enabled: enabled.unwrap_or(true),
            config: config.to_raw_value(),
        })
    }
}

fn check_name(kind: CapabilityKind, name: &str) -> Result<(), ApiError> {
    match kind {
        CapabilityKind::Env if !is_env_name(name) => Err(ApiError::validation(
            "name",
            "must be an environment variable name",
        )),
        CapabilityKind::Net if !is_net_target(name) => {
            Err(ApiError::validation("name", "must be host or host:port"))
        }
        _ => Ok(()),
    }
}

fn check_config(kind: CapabilityKind, name: &str, config: &Json) -> Result<(), ApiError> {
    let Json::Object(entries) = config else {
        return Err(ApiError::invalid_request(
            "field config must be a JSON object",
        ));
    };
    let field = |key: &str| format!("config.{key}");
    match kind {
        CapabilityKind::Fs => {
            for (key, value) in entries {
                if key != "write" {
                    return Err(ApiError::validation(
                        field(key),
                        "is not a config key of fs capabilities",
                    ));
                }
                if !matches!(value, Json::Bool(_)) {
                    return Err(ApiError::validation(field(key), "must be a boolean"));
                }
            }
        }
        CapabilityKind::Env | CapabilityKind::Net => {
            if let Some((key, _)) = entries.first() {
                return Err(ApiError::validation(
                    field(key),
                    "is not allowed: config must be {}",
                ));
            }
        }
        CapabilityKind::Module if name == "exec" => {
            for (key, value) in entries {
                if key != "allow" {
                    return Err(ApiError::validation(
                        field(key),
                        "is not a config key of the exec module",
                    ));
                }
                check_exec_allow(value)?;
            }
        }
        CapabilityKind::Module | CapabilityKind::Global => {}
    }
    Ok(())
}

fn check_exec_allow(value: &Json) -> Result<(), ApiError> {
    let Json::Array(items) = value else {
        return Err(ApiError::validation(
            "config.allow",
            "must be an array of absolute paths",
        ));
    };
    if items.len() > MAX_EXEC_ALLOW {
        return Err(ApiError::validation(
            "config.allow",
            "has more than 64 entries",
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let Json::String(path) = item else {
            return Err(ApiError::validation(
                "config.allow",
                "must be an array of absolute paths",
            ));
        };
        if !path.starts_with('/') || path.contains('\0') {
            return Err(ApiError::validation(
                format!("config.allow.{i}"),
                "must be an absolute path",
            ));
        }
    }
    Ok(())
}

/// `host` or `host:port` (port 1–65535), host being an IPv4 dotted quad, a bracketed IPv6
/// literal, or a DNS name of 1–253 characters of dot-separated labels `[A-Za-z0-9-]{1,63}` that
/// neither start nor end with `-`.
pub(crate) fn is_net_target(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => return is_port(port),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    port.is_none_or(is_port) && (host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host))
}

fn is_port(s: &str) -> bool {
    (1..=5).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p))
}

fn is_dns_name(s: &str) -> bool {
    (1..=253).contains(&s.len())
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::extract::decode_body;
    use crate::api::extract::tests::{Outcome, outcome, v};

    fn check(table: &[(&str, Outcome)]) {
        for (body, expected) in table {
            let got = decode_body::<AddCapability>(body.as_bytes());
            assert_eq!(&outcome(&got), expected, "body {body}: {got:?}");
        }
    }

    use crate::api::extract::tests::Outcome::{Invalid, Ok as Fine};

    #[test]
    fn common_fields() {
        check(&[
            (r#"{"kind":"fs","name":"worktree"}"#, Fine),
            (
                r#"{"kind":"fs","name":"worktree","enabled":false,"config":{}}"#,
                Fine,
            ),
            (r#"{"name":"worktree"}"#, v("kind")),
            (r#"{"kind":"fs"}"#, v("name")),
            ("{}", v("kind")),
            (r#"{"kind":"FS","name":"w"}"#, v("kind")),
            (r#"{"kind":"file","name":"w"}"#, v("kind")),
            (r#"{"kind":"","name":"w"}"#, v("kind")),
            (r#"{"kind":"fs","name":""}"#, v("name")),
            (r#"{"kind":"fs","name":"   "}"#, v("name")),
            (
                &format!(r#"{{"kind":"global","name":"{}"}}"#, "ü".repeat(128)),
                Fine,
            ),
            (
                &format!(r#"{{"kind":"global","name":"{}"}}"#, "ü".repeat(129)),
                v("name"),
            ),
            (r#"{"kind":null,"name":"w"}"#, Invalid),
            (r#"{"kind":"fs","name":null}"#, Invalid),
            (r#"{"kind":"fs","name":"w","enabled":null}"#, Invalid),
            (r#"{"kind":"fs","name":"w","enabled":"true"}"#, Invalid),
            (r#"{"kind":"fs","name":"w","config":null}"#, Invalid),
            (r#"{"kind":"fs","name":"w","config":[]}"#, Invalid),
            (r#"{"kind":"fs","name":"w","config":"{}"}"#, Invalid),
            (r#"{"kind":"fs","name":"w","Config":{}}"#, Invalid),
            (r#"{"kind":"fs","kind":"fs","name":"w"}"#, Invalid),
            (
                r#"{"kind":"module","name":"m","config":{"a":1,"a":2}}"#,
                Invalid,
            ),
            (
                r#"{"kind":"module","name":"m","config":{"o":{"a":1,"a":2}}}"#,
                Invalid,
            ),
        ]);
    }

    #[test]
    fn fs_rules() {
        check(&[
            (
                r#"{"kind":"fs","name":"any label at all","config":{"write":true}}"#,
                Fine,
            ),
            (r#"{"kind":"fs","name":"w","config":{"write":false}}"#, Fine),
            (
                r#"{"kind":"fs","name":"w","config":{"write":"yes"}}"#,
                v("config.write"),
            ),
            (
                r#"{"kind":"fs","name":"w","config":{"write":1}}"#,
                v("config.write"),
            ),
            (
                r#"{"kind":"fs","name":"w","config":{"write":{}}}"#,
                v("config.write"),
            ),
            (
                r#"{"kind":"fs","name":"w","config":{"read":true}}"#,
                v("config.read"),
            ),
            (
                r#"{"kind":"fs","name":"w","config":{"Write":true}}"#,
                v("config.Write"),
            ),
            (
                r#"{"kind":"fs","name":"w","config":{"write":true,"x":1}}"#,
                v("config.x"),
            ),
            (
                r#"{"kind":"fs","name":"w","config":{"write":null}}"#,
                Invalid,
            ),
            (r#"{"kind":"fs","name":"w","config":{"x":[null]}}"#, Invalid),
            (
                r#"{"kind":"fs","name":"w","config":{"write":true,"write":true}}"#,
                Invalid,
            ),
        ]);
    }

    #[test]
    fn env_rules() {
        check(&[
            (r#"{"kind":"env","name":"HOME"}"#, Fine),
            (r#"{"kind":"env","name":"_my_var2","config":{}}"#, Fine),
            (r#"{"kind":"env","name":"MY-VAR"}"#, v("name")),
            (r#"{"kind":"env","name":"1ABC"}"#, v("name")),
            (r#"{"kind":"env","name":"A B"}"#, v("name")),
            (
                r#"{"kind":"env","name":"HOME","config":{"default":"x"}}"#,
                v("config.default"),
            ),
            (
                r#"{"kind":"env","name":"HOME","config":{"a":null}}"#,
                Invalid,
            ),
            (
                r#"{"kind":"env","name":"1BAD","config":{"a":1}}"#,
                v("name"),
            ),
        ]);
    }

    #[test]
    fn net_rules() {
        check(&[
            (r#"{"kind":"net","name":"example.com"}"#, Fine),
            (
                r#"{"kind":"net","name":"example.com:443","config":{}}"#,
                Fine,
            ),
            (r#"{"kind":"net","name":"ex ample.com"}"#, v("name")),
            (
                r#"{"kind":"net","name":"example.com","config":{"port":1}}"#,
                v("config.port"),
            ),
            (
                r#"{"kind":"net","name":"example.com","config":{"port":null}}"#,
                Invalid,
            ),
        ]);
        let table = [
            ("example.com", true),
            ("localhost", true),
            ("a", true),
            ("a-b.c-d.e", true),
            ("xn--bcher-kva.example", true),
            ("EXAMPLE.COM:8080", true),
            ("127.0.0.1", true),
            ("127.0.0.1:1", true),
            ("127.0.0.1:65535", true),
            ("999.1.1.1", true), // all-digit labels are valid DNS labels by the grammar
            ("[::1]", true),
            ("[::1]:8080", true),
            ("[2001:db8::1]:443", true),
            ("[::ffff:1.2.3.4]", true),
            (&format!("{}.com", "a".repeat(63)), true),
            (&format!("{}.com", "a".repeat(64)), false),
            (&vec!["abc"; 63].join("."), true),   // 251 characters
            (&vec!["abcd"; 51].join("."), false), // 254 characters
            ("", false),
            ("-a.com", false),
            ("a-.com", false),
            ("a..com", false),
            (".a.com", false),
            ("a.com.", false),
            ("a_b.com", false),
            ("exämple.com", false),
            ("example.com:0", false),
            ("example.com:65536", false),
            ("example.com:", false),
            ("example.com:+80", false),
            ("example.com:80:80", false),
            ("example.com:http", false),
            ("::1", false),
            ("[::1", false),
            ("[::1]x", false),
            ("[::1]:", false),
            ("[::1]:0", false),
            ("[1.2.3.4]", false),
            ("[example.com]", false),
            ("[fe80::1%eth0]", false),
            (":80", false),
            ("a/b", false),
        ];
        for (input, expected) in table {
            assert_eq!(is_net_target(input), expected, "{input:?}");
        }
    }

    #[test]
    fn module_and_global_rules() {
        let many = (0..65)
            .map(|i| format!(r#""/bin/x{i}""#))
            .collect::<Vec<_>>()
            .join(",");
        let max = (0..64)
            .map(|i| format!(r#""/bin/x{i}""#))
            .collect::<Vec<_>>()
            .join(",");
        check(&[
            (
                r#"{"kind":"module","name":"database","config":{"anything":[1,{"x":null}],"n":null}}"#,
                Fine,
            ),
            (
                r#"{"kind":"global","name":"my global","config":{"a":null}}"#,
                Fine,
            ),
            (
                r#"{"kind":"module","name":"Exec","config":{"other":1}}"#,
                Fine,
            ),
            (r#"{"kind":"module","name":"exec"}"#, Fine),
            (r#"{"kind":"module","name":"exec","config":{}}"#, Fine),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":[]}}"#,
                Fine,
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":["/bin/ls","/usr/bin/git"]}}"#,
                Fine,
            ),
            (
                &format!(r#"{{"kind":"module","name":"exec","config":{{"allow":[{max}]}}}}"#),
                Fine,
            ),
            (
                &format!(r#"{{"kind":"module","name":"exec","config":{{"allow":[{many}]}}}}"#),
                v("config.allow"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":"/bin/ls"}}"#,
                v("config.allow"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":null}}"#,
                v("config.allow"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":[1]}}"#,
                v("config.allow"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":[null]}}"#,
                v("config.allow"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":["/bin/ls","ls"]}}"#,
                v("config.allow.1"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":[""]}}"#,
                v("config.allow.0"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":["/a\u0000"]}}"#,
                v("config.allow.0"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"deny":[]}}"#,
                v("config.deny"),
            ),
            (
                r#"{"kind":"module","name":"exec","config":{"allow":[],"timeout":5}}"#,
                v("config.timeout"),
            ),
            (
                r#"{"kind":"global","name":"exec","config":{"deny":[]}}"#,
                Fine,
            ),
            // null inside config is a decoding error unless the kind is module or global.
            (
                r#"{"kind":"bogus","name":"x","config":{"a":null}}"#,
                Invalid,
            ),
            (r#"{"name":"x","config":{"a":null}}"#, Invalid),
            (r#"{"kind":"bogus","name":"x","config":{"a":1}}"#, v("kind")),
        ]);
    }

    #[test]
    fn decoded_values() {
        let cap = decode_body::<AddCapability>(
            br#"{ "config" : { "z" : 1.0, "a" : null }, "name" : "db", "kind" : "module" }"#,
        )
        .unwrap();
        assert_eq!(cap.kind, CapabilityKind::Module);
        assert_eq!((cap.name.as_str(), cap.enabled), ("db", true));
        assert_eq!(cap.config.get(), r#"{"z":1.0,"a":null}"#);
        let cap =
            decode_body::<AddCapability>(br#"{"kind":"fs","name":"w","enabled":false}"#).unwrap();
        assert_eq!((cap.enabled, cap.config.get()), (false, "{}"));
        for kind in CapabilityKind::ALL {
            assert_eq!(CapabilityKind::parse(kind.as_str()), Some(kind));
        }
    }
}
