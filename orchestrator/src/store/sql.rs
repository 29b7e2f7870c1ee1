//! Conversions between model types and SQLite values (ids and enums as text, times as ms).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{
    CapabilityId, CapabilityKind, EventType, ExecutionId, ExecutionKind, ExecutionStatus,
    SessionId, SessionStatus, StartupFileId, TemplateId, Timestamp,
};

/// A stored value that does not decode into its model type: the database was damaged
/// or written by something other than this store.
#[derive(Debug, thiserror::Error)]
#[error("failed to decode stored {kind} {text:?}")]
struct BadText {
    kind: &'static str,
    text: String,
}

fn bad(kind: &'static str, text: &str) -> FromSqlError {
    FromSqlError::Other(Box::new(BadText {
        kind,
        text: text.to_owned(),
    }))
}

macro_rules! sql_text {
    ($ty:ty, $kind:literal, $parse:expr) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.to_string()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                $parse(text).ok_or_else(|| bad($kind, text))
            }
        }
    };
}

sql_text!(TemplateId, "template id", TemplateId::parse_strict);
sql_text!(SessionId, "session id", SessionId::parse_strict);
sql_text!(ExecutionId, "execution id", ExecutionId::parse_strict);
sql_text!(CapabilityId, "capability id", CapabilityId::parse_strict);
sql_text!(
    StartupFileId,
    "startup file id",
    StartupFileId::parse_strict
);
sql_text!(SessionStatus, "session status", SessionStatus::parse);
sql_text!(ExecutionKind, "execution kind", ExecutionKind::parse);
sql_text!(ExecutionStatus, "execution status", ExecutionStatus::parse);
sql_text!(CapabilityKind, "capability kind", CapabilityKind::parse);
sql_text!(EventType, "event type", EventType::parse);

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_millis()))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_i64().map(Timestamp::from_millis)
    }
}

/// A column holding JSON text, decoded into `T` when read.
pub(super) struct Json<T>(pub(super) T);

impl<T: DeserializeOwned> FromSql for Json<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?)
            .map(Json)
            .map_err(|err| FromSqlError::Other(Box::new(err)))
    }
}

/// Encodes `value` as compact JSON text for a JSON column.
pub(super) fn json_text<T: Serialize + ?Sized>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value)
        .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[test]
    fn model_values_round_trip() {
        let conn = Connection::open_in_memory().unwrap();
        let id = SessionId::new_v4();
        let back: SessionId = conn.query_row("SELECT ?1", [id], |r| r.get(0)).unwrap();
        assert_eq!(back, id);
        let ts = Timestamp::from_millis(-5);
        let back: Timestamp = conn.query_row("SELECT ?1", [ts], |r| r.get(0)).unwrap();
        assert_eq!(back, ts);
        for status in ExecutionStatus::ALL {
            let back: ExecutionStatus =
                conn.query_row("SELECT ?1", [status], |r| r.get(0)).unwrap();
            assert_eq!(back, *status);
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let conn = Connection::open_in_memory().unwrap();
        let id = conn.query_row("SELECT 'not-a-uuid'", [], |r| r.get::<_, SessionId>(0));
        assert!(id.is_err());
        let status = conn.query_row("SELECT 'READY'", [], |r| r.get::<_, SessionStatus>(0));
        assert!(status.is_err());
        let ts = conn.query_row("SELECT 'x'", [], |r| r.get::<_, Timestamp>(0));
        assert!(ts.is_err());
        let list = conn.query_row("SELECT '[1]'", [], |r| r.get::<_, Json<Vec<String>>>(0));
        assert!(list.is_err());
        let text = json_text(&["a".to_owned()]).unwrap();
        let list = conn.query_row("SELECT ?1", [text], |r| r.get::<_, Json<Vec<String>>>(0));
        assert_eq!(list.unwrap().0, ["a"]);
    }
}
