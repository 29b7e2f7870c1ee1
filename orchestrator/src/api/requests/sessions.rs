//! Session inputs (§4.8): create and the list filter.

use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::extract::{
    FromJsonBody, FromQuery, Members, QueryParams, check_text, is_blank, parse_id, required,
};

// ---------------------------------------------------------------------------------------------
// Sessions (§4.8)

/// `POST /sessions`.
#[derive(Debug, ToSchema)]
pub(crate) struct CreateSession {
    pub(crate) template_id: Uuid,
    /// 1–256 characters, not blank; opaque.
    #[schema(min_length = 1, max_length = 256)]
    pub(crate) workspace_id: String,
    /// 1–256 characters, not blank; opaque.
    #[schema(min_length = 1, max_length = 256)]
    pub(crate) base_commit_oid: String,
    /// As sent: not blank, ≤ 4096 bytes, no NUL. Absoluteness and existence are the handler's
    /// `422 INVALID_WORKTREE` step.
    pub(crate) worktree_path: String,
}

/// Longest accepted `worktree_path`, in bytes.
pub(crate) const MAX_WORKTREE_PATH_BYTES: usize = 4096;

impl FromJsonBody for CreateSession {
    const FIELDS: &'static [&'static str] = &[
        "template_id",
        "workspace_id",
        "base_commit_oid",
        "worktree_path",
    ];

    fn from_json(mut m: Members) -> Result<Self, ApiError> {
        let template_id = m.string("template_id")?;
        let workspace_id = m.string("workspace_id")?;
        let base_commit_oid = m.string("base_commit_oid")?;
        let worktree_path = m.string("worktree_path")?;
        let template_id = parse_id("template_id", &required(template_id, "template_id")?)?;
        let workspace_id = required(workspace_id, "workspace_id")?;
        check_text(&workspace_id, "workspace_id", 1, 256)?;
        let base_commit_oid = required(base_commit_oid, "base_commit_oid")?;
        check_text(&base_commit_oid, "base_commit_oid", 1, 256)?;
        let worktree_path = required(worktree_path, "worktree_path")?;
        if is_blank(&worktree_path) {
            return Err(ApiError::validation("worktree_path", "must not be blank"));
        }
        if worktree_path.len() > MAX_WORKTREE_PATH_BYTES {
            return Err(ApiError::validation(
                "worktree_path",
                "is longer than 4096 bytes",
            ));
        }
        if worktree_path.contains('\0') {
            return Err(ApiError::validation("worktree_path", "contains NUL"));
        }
        Ok(Self {
            template_id,
            workspace_id,
            base_commit_oid,
            worktree_path,
        })
    }
}

/// A session status as named in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum SessionStatus {
    Starting,
    Ready,
    Crashed,
    Closed,
}

impl SessionStatus {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Crashed => "crashed",
            Self::Closed => "closed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Starting, Self::Ready, Self::Crashed, Self::Closed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// `GET /sessions?status=…`.
#[derive(Debug, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListSessions {
    /// Only sessions in this status.
    #[param(inline)]
    pub(crate) status: Option<SessionStatus>,
}

impl FromQuery for ListSessions {
    const PARAMS: &'static [&'static str] = &["status"];

    fn from_query(params: QueryParams) -> Result<Self, ApiError> {
        let status = params
            .get("status")
            .map(|s| {
                SessionStatus::parse(s).ok_or_else(|| {
                    ApiError::validation("status", "must be starting, ready, crashed or closed")
                })
            })
            .transpose()?;
        Ok(Self { status })
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
    fn create_session() {
        let body = |template_id: &str, ws: &str, oid: &str, wt: &str| {
            serde_json::json!({"template_id": template_id, "workspace_id": ws, "base_commit_oid": oid, "worktree_path": wt}).to_string()
        };
        let long_path = format!("/{}", "a".repeat(4095));
        let too_long_path = format!("/{}", "a".repeat(4096));
        let long_multibyte = format!("/{}", "é".repeat(2048));
        check::<CreateSession>(&[
            (&body(SID, "ws-42", "9fce", "/srv/wt"), Fine),
            (
                &body(&SID.to_uppercase(), "ws", "o", "relative/is/422/later"),
                Fine,
            ),
            (
                &body(SID, &"é".repeat(256), &"x".repeat(256), &long_path),
                Fine,
            ),
            (&body(SID, &"é".repeat(257), "o", "/w"), v("workspace_id")),
            (
                &body(SID, "ws", &"x".repeat(257), "/w"),
                v("base_commit_oid"),
            ),
            (&body(SID, "ws", "o", &too_long_path), v("worktree_path")),
            (&body(SID, "ws", "o", &long_multibyte), v("worktree_path")),
            (&body(SID, "ws", "o", "/a\u{0}b"), v("worktree_path")),
            (&body(SID, "ws", "o", " "), v("worktree_path")),
            (&body("nope", "ws", "o", "/w"), v("template_id")),
            (
                &body(&format!("{{{SID}}}"), "ws", "o", "/w"),
                v("template_id"),
            ),
            (
                &body(&SID.replace('-', ""), "ws", "o", "/w"),
                v("template_id"),
            ),
            (&body(&format!(" {SID}"), "ws", "o", "/w"), v("template_id")),
            (&body(SID, "", "o", "/w"), v("workspace_id")),
            (&body(SID, "  ", "o", "/w"), v("workspace_id")),
            (&body(SID, "ws", " ", "/w"), v("base_commit_oid")),
            (
                r#"{"workspace_id":"ws","base_commit_oid":"o","worktree_path":"/w"}"#,
                v("template_id"),
            ),
            (
                &format!(r#"{{"template_id":"{SID}","base_commit_oid":"o","worktree_path":"/w"}}"#),
                v("workspace_id"),
            ),
            (
                &format!(r#"{{"template_id":"{SID}","workspace_id":"w","worktree_path":"/w"}}"#),
                v("base_commit_oid"),
            ),
            (
                &format!(r#"{{"template_id":"{SID}","workspace_id":"w","base_commit_oid":"o"}}"#),
                v("worktree_path"),
            ),
            (
                &format!(r#"{{"template_id":"{SID}","workspace_id":null,"base_commit_oid":"o"}}"#),
                Invalid,
            ),
            (r#"{"template_id":42}"#, Invalid),
            (r#"{"template_id":"x","extra":true}"#, Invalid),
        ]);
        let s =
            decode_body::<CreateSession>(body(&SID.to_uppercase(), " ws ", "o", "/w/").as_bytes())
                .unwrap();
        assert_eq!(s.template_id.to_string(), SID);
        assert_eq!(
            (s.workspace_id.as_str(), s.worktree_path.as_str()),
            (" ws ", "/w/")
        );
    }

    #[test]
    fn list_sessions() {
        check_query::<ListSessions>(&[
            ("", Fine),
            ("status=starting", Fine),
            ("status=ready", Fine),
            ("status=crashed", Fine),
            ("status=closed", Fine),
            ("status=Ready", v("status")),
            ("status=", v("status")),
            ("status", v("status")),
            ("status=ready&status=ready", v("status")),
            ("state=ready", v("state")),
        ]);
        let q = decode_query::<ListSessions>(Some("status=crashed")).unwrap();
        assert_eq!(q.status.map(SessionStatus::as_str), Some("crashed"));
    }
}
