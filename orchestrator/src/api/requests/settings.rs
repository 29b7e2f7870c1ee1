//! `PATCH /templates/{id}/settings` input (§4.3) with the ranges of §5.

use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::extract::{FromJsonBody, Members, check_range};
use crate::api::paths::clean_relative_path;

// ---------------------------------------------------------------------------------------------
// Settings (§4.3, §5)

/// Inclusive ranges and defaults of the integer settings (§5).
pub(crate) mod limits {
    /// `limits.cpu_ms`: (min, max, default).
    pub(crate) const CPU_MS: (u32, u32, u32) = (1, 3_600_000, 5000);
    /// `limits.wall_ms`.
    pub(crate) const WALL_MS: (u32, u32, u32) = (1, 3_600_000, 30_000);
    /// `limits.mem_mb`.
    pub(crate) const MEM_MB: (u32, u32, u32) = (16, 4096, 128);
    /// `limits.max_events`.
    pub(crate) const MAX_EVENTS: (u32, u32, u32) = (1, 1_000_000, 1000);
    /// `limits.max_output_kb`.
    pub(crate) const MAX_OUTPUT_KB: (u32, u32, u32) = (1, 65_536, 512);
    /// Most `resolver.roots` entries.
    pub(crate) const MAX_ROOTS: usize = 32;
    /// Most `resolver.extensions` entries.
    pub(crate) const MAX_EXTENSIONS: usize = 16;
}

/// `PATCH /templates/{id}/settings`: only the given fields change; arrays are replaced whole.
#[derive(Debug, Default, PartialEq, Eq, ToSchema)]
pub(crate) struct SettingsPatch {
    #[schema(required = false)]
    pub(crate) limits: LimitsPatch,
    #[schema(required = false)]
    pub(crate) resolver: ResolverPatch,
    #[schema(required = false)]
    pub(crate) runtime: RuntimePatch,
}

/// The `limits` member of a [`SettingsPatch`]; each value is within its §5 range.
#[derive(Debug, Default, PartialEq, Eq, ToSchema)]
pub(crate) struct LimitsPatch {
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 3600000)]
    pub(crate) cpu_ms: Option<u32>,
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 3600000)]
    pub(crate) wall_ms: Option<u32>,
    #[schema(value_type = u32, required = false, minimum = 16, maximum = 4096)]
    pub(crate) mem_mb: Option<u32>,
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 1000000)]
    pub(crate) max_events: Option<u32>,
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 65536)]
    pub(crate) max_output_kb: Option<u32>,
}

/// The `resolver` member of a [`SettingsPatch`].
#[derive(Debug, Default, PartialEq, Eq, ToSchema)]
pub(crate) struct ResolverPatch {
    /// ≤ 32 relative paths passing the lexical rules (§8.4), stored as sent.
    #[schema(value_type = Vec<String>, required = false, max_items = 32)]
    pub(crate) roots: Option<Vec<String>>,
    /// ≤ 16 unique strings matching `^\.[A-Za-z0-9]{1,15}$`.
    #[schema(value_type = Vec<String>, required = false, max_items = 16)]
    pub(crate) extensions: Option<Vec<String>>,
    #[schema(value_type = bool, required = false)]
    pub(crate) allow_absolute_repo_imports: Option<bool>,
}

/// The `runtime` member of a [`SettingsPatch`].
#[derive(Debug, Default, PartialEq, Eq, ToSchema)]
pub(crate) struct RuntimePatch {
    #[schema(value_type = bool, required = false)]
    pub(crate) esm: Option<bool>,
    #[schema(value_type = bool, required = false)]
    pub(crate) strict: Option<bool>,
    #[schema(value_type = bool, required = false)]
    pub(crate) console: Option<bool>,
}

impl SettingsPatch {
    /// True for `{}` (and for empty members): nothing changes.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

const LIMIT_FIELDS: &[&str] = &["cpu_ms", "wall_ms", "mem_mb", "max_events", "max_output_kb"];
const RESOLVER_FIELDS: &[&str] = &["roots", "extensions", "allow_absolute_repo_imports"];
const RUNTIME_FIELDS: &[&str] = &["esm", "strict", "console"];

impl FromJsonBody for SettingsPatch {
    const FIELDS: &'static [&'static str] = &["limits", "resolver", "runtime"];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        // Decoding.
        let mut raw_limits: [Option<i64>; 5] = [None; 5];
        if let Some(mut l) = m.object("limits", LIMIT_FIELDS)? {
            for (slot, key) in raw_limits.iter_mut().zip(LIMIT_FIELDS) {
                *slot = l.integer(key)?;
            }
        }
        let mut resolver = ResolverPatch::default();
        if let Some(mut r) = m.object("resolver", RESOLVER_FIELDS)? {
            resolver.roots = r.string_array("roots")?;
            resolver.extensions = r.string_array("extensions")?;
            resolver.allow_absolute_repo_imports = r.bool("allow_absolute_repo_imports")?;
        }
        let mut runtime = RuntimePatch::default();
        if let Some(mut r) = m.object("runtime", RUNTIME_FIELDS)? {
            runtime.esm = r.bool("esm")?;
            runtime.strict = r.bool("strict")?;
            runtime.console = r.bool("console")?;
        }
        // Validation, in §5 order.
        let ranges = [
            limits::CPU_MS,
            limits::WALL_MS,
            limits::MEM_MB,
            limits::MAX_EVENTS,
            limits::MAX_OUTPUT_KB,
        ];
        let mut checked: [Option<u32>; 5] = [None; 5];
        for (((out, raw), key), (min, max, _)) in checked
            .iter_mut()
            .zip(raw_limits)
            .zip(LIMIT_FIELDS)
            .zip(ranges)
        {
            if let Some(value) = raw {
                let field = format!("limits.{key}");
                let value = check_range(value, &field, i64::from(min), i64::from(max))?;
                *out = Some(
                    u32::try_from(value)
                        .map_err(|_| ApiError::validation(field, "is out of range"))?,
                );
            }
        }
        let [cpu_ms, wall_ms, mem_mb, max_events, max_output_kb] = checked;
        if let Some(roots) = &resolver.roots {
            validate_roots(roots)?;
        }
        if let Some(extensions) = &resolver.extensions {
            validate_extensions(extensions)?;
        }
        Ok(Self {
            limits: LimitsPatch {
                cpu_ms,
                wall_ms,
                mem_mb,
                max_events,
                max_output_kb,
            },
            resolver,
            runtime,
        })
    }
}

fn validate_roots(roots: &[String]) -> Result<(), ApiError> {
    if roots.len() > limits::MAX_ROOTS {
        return Err(ApiError::validation(
            "resolver.roots",
            "has more than 32 entries",
        ));
    }
    for (i, root) in roots.iter().enumerate() {
        if let Err(reason) = clean_relative_path(root) {
            return Err(ApiError::validation(
                format!("resolver.roots.{i}"),
                format!("is not a usable relative path ({reason})"),
            ));
        }
    }
    Ok(())
}

fn validate_extensions(extensions: &[String]) -> Result<(), ApiError> {
    if extensions.len() > limits::MAX_EXTENSIONS {
        return Err(ApiError::validation(
            "resolver.extensions",
            "has more than 16 entries",
        ));
    }
    for (i, ext) in extensions.iter().enumerate() {
        let field = || format!("resolver.extensions.{i}");
        let body = ext.strip_prefix('.').unwrap_or("");
        let well_formed = ext.starts_with('.')
            && (1..=15).contains(&body.len())
            && body.bytes().all(|b| b.is_ascii_alphanumeric());
        if !well_formed {
            return Err(ApiError::validation(
                field(),
                "must be a dot and 1 to 15 letters or digits",
            ));
        }
        if extensions[..i].contains(ext) {
            return Err(ApiError::validation(field(), "is repeated"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::extract::decode_body;
    use crate::api::extract::tests::Outcome::{Invalid, Ok as Fine};
    use crate::api::extract::tests::{check_body as check, v};

    #[test]
    fn settings_patch() {
        let roots33 = format!(
            r#"{{"resolver":{{"roots":[{}]}}}}"#,
            vec![r#""a""#; 33].join(",")
        );
        let roots32 = format!(
            r#"{{"resolver":{{"roots":[{}]}}}}"#,
            vec![r#""a""#; 32].join(",")
        );
        let ext17 = format!(
            r#"{{"resolver":{{"extensions":[{}]}}}}"#,
            (0..17)
                .map(|i| format!(r#"".e{i}""#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let ext16 = format!(
            r#"{{"resolver":{{"extensions":[{}]}}}}"#,
            (0..16)
                .map(|i| format!(r#"".e{i}""#))
                .collect::<Vec<_>>()
                .join(",")
        );
        check::<SettingsPatch>(&[
            ("{}", Fine),
            (r#"{"limits":{}}"#, Fine),
            (
                r#"{"limits":{"cpu_ms":1,"wall_ms":3600000,"mem_mb":16,"max_events":1000000,"max_output_kb":65536}}"#,
                Fine,
            ),
            (r#"{"limits":{"mem_mb":4096}}"#, Fine),
            (r#"{"limits":{"wall_ms":0}}"#, v("limits.wall_ms")),
            (r#"{"limits":{"wall_ms":-1}}"#, v("limits.wall_ms")),
            (r#"{"limits":{"wall_ms":3600001}}"#, v("limits.wall_ms")),
            (
                r#"{"limits":{"wall_ms":9223372036854775807}}"#,
                v("limits.wall_ms"),
            ),
            (r#"{"limits":{"wall_ms":9223372036854775808}}"#, Invalid),
            (r#"{"limits":{"wall_ms":5.0}}"#, Invalid),
            (r#"{"limits":{"wall_ms":5.5}}"#, Invalid),
            (r#"{"limits":{"wall_ms":5e3}}"#, Invalid),
            (r#"{"limits":{"wall_ms":"5000"}}"#, Invalid),
            (r#"{"limits":{"wall_ms":null}}"#, Invalid),
            (r#"{"limits":null}"#, Invalid),
            (r#"{"limits":[]}"#, Invalid),
            (r#"{"limits":{"Wall_ms":5}}"#, Invalid),
            (r#"{"limits":{"timeout":5}}"#, Invalid),
            (r#"{"limits":{"wall_ms":5,"wall_ms":6}}"#, Invalid),
            (r#"{"limit":{}}"#, Invalid),
            (r#"{"limits":{"mem_mb":15}}"#, v("limits.mem_mb")),
            (r#"{"limits":{"mem_mb":4097}}"#, v("limits.mem_mb")),
            (r#"{"limits":{"cpu_ms":0}}"#, v("limits.cpu_ms")),
            (r#"{"limits":{"max_events":0}}"#, v("limits.max_events")),
            (
                r#"{"limits":{"max_events":1000001}}"#,
                v("limits.max_events"),
            ),
            (
                r#"{"limits":{"max_output_kb":65537}}"#,
                v("limits.max_output_kb"),
            ),
            // First offending field in documented order; decoding errors first.
            (
                r#"{"limits":{"max_output_kb":0,"cpu_ms":0}}"#,
                v("limits.cpu_ms"),
            ),
            (r#"{"limits":{"cpu_ms":0},"runtime":{"esm":"no"}}"#, Invalid),
            (
                r#"{"limits":{"wall_ms":0},"resolver":{"roots":["/x"]}}"#,
                v("limits.wall_ms"),
            ),
            (r#"{"resolver":{"roots":[]}}"#, Fine),
            (r#"{"resolver":{"roots":["src","./lib/","a\\b"]}}"#, Fine),
            (&roots32, Fine),
            (&roots33, v("resolver.roots")),
            (
                r#"{"resolver":{"roots":["a","b","c","/abs"]}}"#,
                v("resolver.roots.3"),
            ),
            (r#"{"resolver":{"roots":["../x"]}}"#, v("resolver.roots.0")),
            (
                r#"{"resolver":{"roots":["a/../.."]}}"#,
                v("resolver.roots.0"),
            ),
            (r#"{"resolver":{"roots":["."]}}"#, v("resolver.roots.0")),
            (r#"{"resolver":{"roots":[""]}}"#, v("resolver.roots.0")),
            (
                r#"{"resolver":{"roots":["a\u0000"]}}"#,
                v("resolver.roots.0"),
            ),
            (r#"{"resolver":{"roots":[null]}}"#, Invalid),
            (r#"{"resolver":{"roots":"src"}}"#, Invalid),
            (r#"{"resolver":{"roots":[1]}}"#, Invalid),
            (r#"{"resolver":{"extensions":[]}}"#, Fine),
            (
                r#"{"resolver":{"extensions":[".js",".MJS",".a1",".abcdefghijklmno"]}}"#,
                Fine,
            ),
            (&ext16, Fine),
            (&ext17, v("resolver.extensions")),
            (
                r#"{"resolver":{"extensions":[".js",".js"]}}"#,
                v("resolver.extensions.1"),
            ),
            (
                r#"{"resolver":{"extensions":[".js","js"]}}"#,
                v("resolver.extensions.1"),
            ),
            (
                r#"{"resolver":{"extensions":["."]}}"#,
                v("resolver.extensions.0"),
            ),
            (
                r#"{"resolver":{"extensions":[".abcdefghijklmnop"]}}"#,
                v("resolver.extensions.0"),
            ),
            (
                r#"{"resolver":{"extensions":[".j-s"]}}"#,
                v("resolver.extensions.0"),
            ),
            (
                r#"{"resolver":{"extensions":[".é"]}}"#,
                v("resolver.extensions.0"),
            ),
            (
                r#"{"resolver":{"extensions":["..js"]}}"#,
                v("resolver.extensions.0"),
            ),
            (r#"{"resolver":{"allow_absolute_repo_imports":true}}"#, Fine),
            (r#"{"resolver":{"allow_absolute_repo_imports":1}}"#, Invalid),
            (
                r#"{"runtime":{"esm":true,"strict":false,"console":false}}"#,
                Fine,
            ),
            (r#"{"runtime":{"strict":"true"}}"#, Invalid),
            (r#"{"runtime":{"strict":null}}"#, Invalid),
            (r#"{"runtime":{"Strict":true}}"#, Invalid),
        ]);
        let patch = decode_body::<SettingsPatch>(
            br#"{"runtime":{"strict":true},"limits":{"wall_ms":1000},"resolver":{"roots":["./a"]}}"#,
        )
        .unwrap();
        assert_eq!(
            patch.limits,
            LimitsPatch {
                wall_ms: Some(1000),
                ..LimitsPatch::default()
            }
        );
        assert_eq!(patch.resolver.roots, Some(vec!["./a".to_owned()]));
        assert_eq!(
            patch.runtime,
            RuntimePatch {
                strict: Some(true),
                ..RuntimePatch::default()
            }
        );
        assert!(decode_body::<SettingsPatch>(b"{}").unwrap().is_empty());
        assert!(!patch.is_empty());
    }
}
