//! The schema: an append-only list of migrations, tracked by `PRAGMA user_version`.
//!
//! Never edit or reorder an entry that has shipped; append a new one instead. Migration
//! N (1-based) brings the schema from version N-1 to N. Times are INTEGER milliseconds
//! since the epoch, ids are lowercase hyphenated UUID text (so text order is id order),
//! and JSON passed through the daemon is TEXT stored verbatim.

use rusqlite::{Connection, TransactionBehavior};

use super::error::StoreError;

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the v1 schema.
    r#"
CREATE TABLE templates (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL UNIQUE,
    engine        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- settings (spec §5), one set per template
    settings_updated_at         INTEGER NOT NULL,
    cpu_ms                      INTEGER NOT NULL,
    wall_ms                     INTEGER NOT NULL,
    mem_mb                      INTEGER NOT NULL,
    max_events                  INTEGER NOT NULL,
    max_output_kb               INTEGER NOT NULL,
    resolver_roots              TEXT NOT NULL,   -- JSON array of strings
    resolver_extensions         TEXT NOT NULL,   -- JSON array of strings
    allow_absolute_repo_imports INTEGER NOT NULL CHECK (allow_absolute_repo_imports IN (0, 1)),
    runtime_esm                 INTEGER NOT NULL CHECK (runtime_esm IN (0, 1)),
    runtime_strict              INTEGER NOT NULL CHECK (runtime_strict IN (0, 1)),
    runtime_console             INTEGER NOT NULL CHECK (runtime_console IN (0, 1))
) STRICT;
CREATE INDEX templates_newest ON templates (created_at DESC, id DESC);

CREATE TABLE capabilities (
    id          TEXT PRIMARY KEY NOT NULL,
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('module', 'global', 'fs', 'net', 'env')),
    name        TEXT NOT NULL,
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    config      TEXT NOT NULL,                   -- JSON object as sent
    created_at  INTEGER NOT NULL,
    UNIQUE (template_id, kind, name)
) STRICT;
CREATE INDEX capabilities_oldest ON capabilities (template_id, created_at, id);

CREATE TABLE startup_files (
    id          TEXT PRIMARY KEY NOT NULL,
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    order_index INTEGER NOT NULL,
    mode        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (template_id, path)
) STRICT;
CREATE INDEX startup_files_run_order ON startup_files (template_id, order_index, created_at, id);

CREATE TABLE template_modules (
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (template_id, name),
    UNIQUE (template_id, position)
) STRICT, WITHOUT ROWID;

CREATE TABLE template_libraries (
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    library_id  TEXT NOT NULL,                   -- catalog id: the entry up to '@'
    entry       TEXT NOT NULL,                   -- 'id' or 'id@version'
    PRIMARY KEY (template_id, library_id),
    UNIQUE (template_id, position)
) STRICT, WITHOUT ROWID;

-- No foreign key to templates: a closed session may name a deleted template (spec §10.7).
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    template_id     TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    base_commit_oid TEXT NOT NULL,
    worktree_path   TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('starting', 'ready', 'crashed', 'closed')),
    engine          TEXT NOT NULL,
    pid             INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    closed_at       INTEGER
) STRICT;
CREATE INDEX sessions_newest ON sessions (created_at DESC, id DESC);
CREATE INDEX sessions_by_status ON sessions (status, created_at DESC, id DESC);
CREATE INDEX sessions_by_template ON sessions (template_id, status);

CREATE TABLE executions (
    id            TEXT PRIMARY KEY NOT NULL,
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    kind          TEXT NOT NULL CHECK (kind IN ('repl', 'run_file', 'startup')),
    status        TEXT NOT NULL
                  CHECK (status IN ('running', 'ok', 'error', 'timeout', 'cancelled')),
    input         TEXT,
    path          TEXT,
    args          TEXT,                          -- JSON object as sent
    env           TEXT,                          -- JSON object of strings as sent
    result        TEXT,                          -- value payload, compact JSON
    error_code    TEXT,
    error_message TEXT,
    error_name    TEXT,
    error_stack   TEXT,
    wall_ms       INTEGER NOT NULL,
    cpu_ms        INTEGER NOT NULL,
    event_count   INTEGER NOT NULL,              -- = the highest stored seq
    output_bytes  INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    CHECK ((status = 'running') = (ended_at IS NULL))
) STRICT;
CREATE INDEX executions_newest ON executions (session_id, started_at DESC, id DESC);
-- At most one running execution per session (spec §7.1); also finds rows for the sweep.
CREATE UNIQUE INDEX executions_running ON executions (session_id) WHERE status = 'running';

CREATE TABLE events (
    execution_id TEXT NOT NULL REFERENCES executions (id),
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    ts           INTEGER NOT NULL,
    type         TEXT NOT NULL
                 CHECK (type IN ('input_echo', 'console', 'value', 'exception', 'system')),
    payload      TEXT NOT NULL,                  -- compact JSON, served verbatim
    PRIMARY KEY (execution_id, seq)
) STRICT, WITHOUT ROWID;
"#,
    // 2: executions get an insertion-ordered number, and events are keyed by it instead of by
    // the execution's random UUID, so that the events of new executions are appended at the end
    // of their table instead of landing on (and splitting) a random page each: a short
    // execution's commit writes several pages fewer.
    r#"
CREATE TABLE executions_v2 (
    no            INTEGER PRIMARY KEY,           -- insertion order
    id            TEXT NOT NULL UNIQUE,
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    kind          TEXT NOT NULL CHECK (kind IN ('repl', 'run_file', 'startup')),
    status        TEXT NOT NULL
                  CHECK (status IN ('running', 'ok', 'error', 'timeout', 'cancelled')),
    input         TEXT,
    path          TEXT,
    args          TEXT,                          -- JSON object as sent
    env           TEXT,                          -- JSON object of strings as sent
    result        TEXT,                          -- value payload, compact JSON
    error_code    TEXT,
    error_message TEXT,
    error_name    TEXT,
    error_stack   TEXT,
    wall_ms       INTEGER NOT NULL,
    cpu_ms        INTEGER NOT NULL,
    event_count   INTEGER NOT NULL,              -- = the highest stored seq
    output_bytes  INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    CHECK ((status = 'running') = (ended_at IS NULL))
) STRICT;
INSERT INTO executions_v2 (no, id, session_id, kind, status, input, path, args, env, result,
                           error_code, error_message, error_name, error_stack, wall_ms, cpu_ms,
                           event_count, output_bytes, started_at, ended_at)
    SELECT rowid, id, session_id, kind, status, input, path, args, env, result,
           error_code, error_message, error_name, error_stack, wall_ms, cpu_ms,
           event_count, output_bytes, started_at, ended_at
    FROM executions ORDER BY rowid;

CREATE TABLE events_v2 (
    execution_no INTEGER NOT NULL REFERENCES executions_v2 (no),
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    ts           INTEGER NOT NULL,
    type         TEXT NOT NULL
                 CHECK (type IN ('input_echo', 'console', 'value', 'exception', 'system')),
    payload      TEXT NOT NULL,                  -- compact JSON, served verbatim
    PRIMARY KEY (execution_no, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO events_v2 (execution_no, seq, ts, type, payload)
    SELECT x.no, e.seq, e.ts, e.type, e.payload
    FROM events e JOIN executions_v2 x ON x.id = e.execution_id;

DROP TABLE events;
DROP TABLE executions;
ALTER TABLE executions_v2 RENAME TO executions;
ALTER TABLE events_v2 RENAME TO events;
CREATE INDEX executions_newest ON executions (session_id, started_at DESC, id DESC);
-- At most one running execution per session (spec §7.1); also finds rows for the sweep.
CREATE UNIQUE INDEX executions_running ON executions (session_id) WHERE status = 'running';
"#,
];

/// The schema version this build writes.
pub(super) fn supported_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the schema up to date in one EXCLUSIVE transaction. A database whose version
/// is newer than this build knows is refused untouched.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_with(conn, MIGRATIONS)
}

pub(super) fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > supported {
        return Err(StoreError::NewerSchema { found, supported });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    for (index, sql) in migrations.iter().enumerate().skip(applied) {
        tx.execute_batch(sql)
            .map_err(|source| StoreError::Migration {
                version: index + 1,
                source: source.into(),
            })?;
    }
    if found != supported {
        tx.pragma_update(None, "user_version", supported)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrations_apply_once_and_set_user_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn), supported_version());
        let first = tables(&conn);
        assert_eq!(
            first,
            [
                "capabilities",
                "events",
                "executions",
                "sessions",
                "startup_files",
                "template_libraries",
                "template_modules",
                "templates"
            ]
        );
        // Idempotent: a second run applies nothing (a re-run of CREATE TABLE would fail).
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn), supported_version());
        assert_eq!(tables(&conn), first);
    }

    #[test]
    fn migration_2_keys_events_by_execution_number_and_keeps_every_row() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..1]).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (id, template_id, workspace_id, base_commit_oid, worktree_path,
                                   status, engine, created_at, updated_at)
                 VALUES ('s', 't', 'w', 'c', '/wt', 'ready', 'quickjs', 1, 1);
             INSERT INTO executions (id, session_id, kind, status, input, wall_ms, cpu_ms,
                                     event_count, output_bytes, started_at, ended_at)
                 VALUES ('e-2', 's', 'repl', 'ok', '1', 1, 1, 2, 10, 5, 6),
                        ('e-1', 's', 'repl', 'running', '2', 0, 0, 1, 3, 7, NULL);
             INSERT INTO events (execution_id, seq, ts, type, payload)
                 VALUES ('e-2', 1, 5, 'input_echo', '{\"a\":1}'),
                        ('e-2', 2, 6, 'value', '{\"b\":2}'),
                        ('e-1', 1, 7, 'input_echo', '{\"c\":3}');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn), 2);
        // Numbers follow insertion order, not id order.
        let numbered: Vec<(i64, String, String)> = conn
            .prepare("SELECT no, id, status FROM executions ORDER BY no")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            numbered,
            [
                (1, "e-2".to_owned(), "ok".to_owned()),
                (2, "e-1".to_owned(), "running".to_owned())
            ]
        );
        let events: Vec<(String, i64, String)> = conn
            .prepare(
                "SELECT x.id, e.seq, e.payload FROM events e JOIN executions x
                 ON x.no = e.execution_no ORDER BY x.id, e.seq",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            events,
            [
                ("e-1".to_owned(), 1, r#"{"c":3}"#.to_owned()),
                ("e-2".to_owned(), 1, r#"{"a":1}"#.to_owned()),
                ("e-2".to_owned(), 2, r#"{"b":2}"#.to_owned())
            ]
        );
        // The constraints came along: one running execution per session, unique ids, and
        // events that name an existing execution.
        let fk: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk, 0);
        assert!(
            conn.execute(
                "INSERT INTO executions (id, session_id, kind, status, wall_ms, cpu_ms,
                                         event_count, output_bytes, started_at)
                     VALUES ('e-3', 's', 'repl', 'running', 0, 0, 0, 0, 8)",
                [],
            )
            .is_err()
        );
        assert!(
            conn.execute(
                "INSERT INTO executions (id, session_id, kind, status, wall_ms, cpu_ms,
                                         event_count, output_bytes, started_at, ended_at)
                     VALUES ('e-2', 's', 'repl', 'ok', 0, 0, 0, 0, 8, 9)",
                [],
            )
            .is_err()
        );
        assert!(
            conn.execute(
                "INSERT INTO events (execution_no, seq, ts, type, payload)
                     VALUES (99, 1, 1, 'console', '{}')",
                [],
            )
            .is_err()
        );
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'executions'
                 AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, ["executions_newest", "executions_running"]);
    }

    #[test]
    fn later_migrations_apply_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        let v1: &[&str] = &["CREATE TABLE a (x INTEGER)"];
        let v3: &[&str] = &[
            "CREATE TABLE a (x INTEGER)",
            "ALTER TABLE a ADD COLUMN y INTEGER",
            "CREATE TABLE b (z INTEGER)",
        ];
        migrate_with(&mut conn, v1).unwrap();
        assert_eq!(user_version(&conn), 1);
        migrate_with(&mut conn, v3).unwrap();
        assert_eq!(user_version(&conn), 3);
        conn.execute("INSERT INTO a (x, y) VALUES (1, 2)", [])
            .unwrap();
    }

    #[test]
    fn failed_migration_rolls_back_everything() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken: &[&str] = &["CREATE TABLE a (x INTEGER)", "NOT SQL"];
        let err = migrate_with(&mut conn, broken).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 2, .. }),
            "{err:?}"
        );
        assert_eq!(user_version(&conn), 0);
        assert!(tables(&conn).is_empty());
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", supported_version() + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, supported }
                if found == supported_version() + 1 && supported == supported_version()),
            "{err:?}"
        );
        assert!(err.to_string().contains("newer vm-system"));
        assert!(tables(&conn).is_empty());
    }
}
