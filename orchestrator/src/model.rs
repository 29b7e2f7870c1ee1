//! Domain types shared by the store, the services and the API (no serde, no SQL).
//!
//! Ids, timestamps, the status enums and the rows of spec §3. JSON that the daemon only
//! passes through (event payloads, execution results) stays compact JSON text end to end:
//! the worker produces it, the store saves it verbatim and the API embeds it raw.
#![cfg_attr(
    not(test),
    expect(dead_code, reason = "wired up by the service and api layers")
)]
#![cfg_attr(
    test,
    allow(dead_code, reason = "wired up by the service and api layers")
)]

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub(crate) struct $name(Uuid);

        impl $name {
            /// A new random (version 4) id.
            pub(crate) fn new_v4() -> Self {
                Self(Uuid::new_v4())
            }

            /// Parses the only accepted text form (spec §1): 36 characters, 8-4-4-4-12 hex
            /// digits of either case. Version and variant bits are not checked.
            pub(crate) fn parse_strict(text: &str) -> Option<Self> {
                parse_uuid_strict(text).map(Self)
            }

            pub(crate) fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub(crate) fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

id_type!(
    /// Identifies a template.
    TemplateId
);
id_type!(
    /// Identifies a session.
    SessionId
);
id_type!(
    /// Identifies an execution.
    ExecutionId
);
id_type!(
    /// Identifies a capability of a template.
    CapabilityId
);
id_type!(
    /// Identifies a startup file of a template.
    StartupFileId
);

/// Accepts exactly `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` with hex digits of either case.
fn parse_uuid_strict(text: &str) -> Option<Uuid> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let well_formed = bytes.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    if !well_formed {
        return None;
    }
    Uuid::try_parse(text).ok()
}

/// A point in time: milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct Timestamp(i64);

impl Timestamp {
    pub(crate) fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// The current wall-clock time, truncated to milliseconds.
    pub(crate) fn now() -> Self {
        let millis = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis())
                .map(|ms| -ms)
                .unwrap_or(i64::MIN),
        };
        Self(millis)
    }

    pub(crate) fn as_millis(self) -> i64 {
        self.0
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub(crate) fn millis_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    /// RFC 3339, UTC, exactly millisecond precision: `2026-11-23T22:40:01.123Z` (spec §1).
    pub(crate) fn to_rfc3339(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400_000);
        let in_day = self.0.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
        let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z"
        )
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`, valid for the whole `i64` millisecond range.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub(crate) enum $name {
            $($variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used in the API and in the database.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The inverse of [`Self::as_str`]; exact, case-sensitive match.
            pub(crate) fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Session lifecycle state (spec §6).
    SessionStatus {
        Starting => "starting",
        Ready => "ready",
        Crashed => "crashed",
        Closed => "closed",
    }
);

impl SessionStatus {
    /// `starting` and `ready` sessions hold a worker; the restart sweep crashes them.
    pub(crate) fn is_live(self) -> bool {
        matches!(self, SessionStatus::Starting | SessionStatus::Ready)
    }
}

text_enum!(
    /// What an execution runs (spec §3).
    ExecutionKind {
        Repl => "repl",
        RunFile => "run_file",
        Startup => "startup",
    }
);

text_enum!(
    /// Execution status (spec §7.4).
    ExecutionStatus {
        Running => "running",
        Ok => "ok",
        Error => "error",
        Timeout => "timeout",
        Cancelled => "cancelled",
    }
);

impl ExecutionStatus {
    pub(crate) fn is_terminal(self) -> bool {
        self != ExecutionStatus::Running
    }
}

text_enum!(
    /// Capability kinds (spec §8.2).
    CapabilityKind {
        Module => "module",
        Global => "global",
        Fs => "fs",
        Net => "net",
        Env => "env",
    }
);

text_enum!(
    /// Event types (spec §7.5).
    EventType {
        InputEcho => "input_echo",
        Console => "console",
        Value => "value",
        Exception => "exception",
        System => "system",
    }
);

/// Per-execution limits of a template (spec §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Limits {
    pub(crate) cpu_ms: u32,
    pub(crate) wall_ms: u32,
    pub(crate) mem_mb: u32,
    pub(crate) max_events: u32,
    pub(crate) max_output_kb: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_ms: 5000,
            wall_ms: 30_000,
            mem_mb: 128,
            max_events: 1000,
            max_output_kb: 512,
        }
    }
}

/// Module resolver settings; reserved in v1 (spec §5).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Resolver {
    pub(crate) roots: Vec<String>,
    pub(crate) extensions: Vec<String>,
    pub(crate) allow_absolute_repo_imports: bool,
}

impl Default for Resolver {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            extensions: vec![".js".to_owned(), ".mjs".to_owned()],
            allow_absolute_repo_imports: false,
        }
    }
}

/// Evaluation settings (spec §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RuntimeSettings {
    pub(crate) esm: bool,
    pub(crate) strict: bool,
    pub(crate) console: bool,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            esm: false,
            strict: false,
            console: true,
        }
    }
}

/// The settings of one template (spec §3 Settings).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Settings {
    pub(crate) template_id: TemplateId,
    pub(crate) updated_at: Timestamp,
    pub(crate) limits: Limits,
    pub(crate) resolver: Resolver,
    pub(crate) runtime: RuntimeSettings,
}

impl Settings {
    /// The defaults of spec §5 for a template created at `now`.
    pub(crate) fn defaults(template_id: TemplateId, now: Timestamp) -> Self {
        Self {
            template_id,
            updated_at: now,
            limits: Limits::default(),
            resolver: Resolver::default(),
            runtime: RuntimeSettings::default(),
        }
    }
}

/// A template (spec §3): `exposed_modules` and `libraries` in the order they were added.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Template {
    pub(crate) id: TemplateId,
    pub(crate) name: String,
    pub(crate) engine: String,
    pub(crate) exposed_modules: Vec<String>,
    /// Entries as stored: `id` or `id@version`.
    pub(crate) libraries: Vec<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

/// A capability grant of a template (spec §3, §8.2).
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Capability {
    pub(crate) id: CapabilityId,
    pub(crate) template_id: TemplateId,
    pub(crate) kind: CapabilityKind,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    /// The object as sent; interpreted only when a session starts.
    pub(crate) config: serde_json::Value,
    pub(crate) created_at: Timestamp,
}

/// What a caller supplies to add a capability; the store assigns id and `created_at`.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct NewCapability {
    pub(crate) kind: CapabilityKind,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) config: serde_json::Value,
}

/// A startup file of a template (spec §3, §4.5).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct StartupFile {
    pub(crate) id: StartupFileId,
    pub(crate) template_id: TemplateId,
    /// The cleaned relative path.
    pub(crate) path: String,
    pub(crate) order_index: i32,
    pub(crate) mode: String,
    pub(crate) created_at: Timestamp,
}

/// A template with everything that hangs off it (spec §3 TemplateDetail).
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct TemplateDetail {
    pub(crate) template: Template,
    pub(crate) settings: Settings,
    /// Oldest first.
    pub(crate) capabilities: Vec<Capability>,
    /// In run order: `order_index`, then `created_at`, then `id`, all ascending.
    pub(crate) startup_files: Vec<StartupFile>,
}

/// A session row (spec §3 Session).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Session {
    pub(crate) id: SessionId,
    /// May name a deleted template once the session is closed.
    pub(crate) template_id: TemplateId,
    pub(crate) workspace_id: String,
    pub(crate) base_commit_oid: String,
    /// Exactly as sent.
    pub(crate) worktree_path: String,
    pub(crate) status: SessionStatus,
    pub(crate) engine: String,
    pub(crate) pid: Option<u32>,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) closed_at: Option<Timestamp>,
}

/// The mutable part of a session row, written by one state change.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct SessionUpdate {
    pub(crate) status: SessionStatus,
    pub(crate) pid: Option<u32>,
    pub(crate) last_error: Option<String>,
}

/// Number of session rows in each state (the `vm_system_sessions` gauge).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub(crate) struct SessionCounts {
    pub(crate) starting: u64,
    pub(crate) ready: u64,
    pub(crate) crashed: u64,
    pub(crate) closed: u64,
}

impl SessionCounts {
    pub(crate) fn get(&self, status: SessionStatus) -> u64 {
        match status {
            SessionStatus::Starting => self.starting,
            SessionStatus::Ready => self.ready,
            SessionStatus::Crashed => self.crashed,
            SessionStatus::Closed => self.closed,
        }
    }

    pub(crate) fn get_mut(&mut self, status: SessionStatus) -> &mut u64 {
        match status {
            SessionStatus::Starting => &mut self.starting,
            SessionStatus::Ready => &mut self.ready,
            SessionStatus::Crashed => &mut self.crashed,
            SessionStatus::Closed => &mut self.closed,
        }
    }
}

/// `error` of an execution that ended other than `ok` (spec §3, §7.4).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct ExecError {
    pub(crate) code: String,
    pub(crate) message: String,
    /// Only for `EXCEPTION`.
    pub(crate) name: Option<String>,
    /// Only for `EXCEPTION`.
    pub(crate) stack: Option<String>,
}

/// Execution metrics (spec §3). While running, the store holds `wall_ms` 0 (the API computes
/// it from `started_at`), the latest `cpu_ms` sample and the counts of the events stored so far.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub(crate) struct ExecMetrics {
    pub(crate) wall_ms: u64,
    pub(crate) cpu_ms: u64,
    pub(crate) event_count: u64,
    /// Sum of the byte lengths of the stored payloads.
    pub(crate) output_bytes: u64,
}

/// An execution row (spec §3 Execution), without its events.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Execution {
    pub(crate) id: ExecutionId,
    pub(crate) session_id: SessionId,
    pub(crate) kind: ExecutionKind,
    pub(crate) status: ExecutionStatus,
    /// REPL source; `None` for other kinds.
    pub(crate) input: Option<String>,
    /// Cleaned relative path for `run_file` and `startup`.
    pub(crate) path: Option<String>,
    /// `run_file` only: the object as sent.
    pub(crate) args: Option<serde_json::Value>,
    /// `run_file` only: the object of strings as sent.
    pub(crate) env: Option<serde_json::Value>,
    /// The value payload as compact JSON text, when `ok`.
    pub(crate) result: Option<String>,
    pub(crate) error: Option<ExecError>,
    pub(crate) metrics: ExecMetrics,
    pub(crate) started_at: Timestamp,
    pub(crate) ended_at: Option<Timestamp>,
}

/// An execution with every one of its events in `seq` order (spec §3 ExecutionDetail).
///
/// An execution with more events than one answer should hold at once comes without them:
/// `events` is empty and `paged` is set, and whoever sends it reads the events from the store
/// in pages, `seq` 1 through the row's `metrics.event_count` (the events of one snapshot).
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct ExecutionDetail {
    pub(crate) execution: Execution,
    pub(crate) events: Vec<Event>,
    pub(crate) paged: bool,
}

/// How an execution ended: everything `finish_execution` writes in one transaction.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct ExecutionOutcome {
    /// Any terminal status.
    pub(crate) status: ExecutionStatus,
    /// The value payload (compact JSON text), exactly when `status` is `ok`.
    pub(crate) result: Option<String>,
    /// Exactly when `status` is not `ok`.
    pub(crate) error: Option<ExecError>,
    pub(crate) wall_ms: u64,
    pub(crate) cpu_ms: u64,
    pub(crate) ended_at: Timestamp,
    /// Events received but not stored yet, in `seq` order.
    pub(crate) pending_events: Vec<Event>,
    /// The single terminal event (`value`, `exception` or `system`), stored last.
    pub(crate) terminal_event: Event,
}

/// One event of an execution (spec §3 Event, §7.5).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Event {
    pub(crate) execution_id: ExecutionId,
    /// Starts at 1, contiguous within an execution.
    pub(crate) seq: u64,
    /// When the daemon received it.
    pub(crate) ts: Timestamp,
    pub(crate) event_type: EventType,
    /// Compact JSON text, stored and served verbatim; its byte length is the output size.
    pub(crate) payload: String,
}

/// What the restart sweep (spec §10.3) changed.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub(crate) struct SweepReport {
    pub(crate) sessions_crashed: u64,
    pub(crate) executions_failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_id(input: &str, expected: Option<&str>) {
        let parsed = SessionId::parse_strict(input).map(|id| id.to_string());
        assert_eq!(parsed.as_deref(), expected, "input {input:?}");
    }

    #[test]
    fn ids_parse_strictly() {
        let lower = "5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29";
        let table: &[(&str, Option<&str>)] = &[
            (lower, Some(lower)),
            ("5B0C2D1E-8F4A-4C3B-9E21-7A6D5C4B3A29", Some(lower)),
            ("5b0C2d1E-8f4A-4c3B-9e21-7A6d5C4b3A29", Some(lower)),
            // Version and variant bits are not checked.
            (
                "00000000-0000-0000-0000-000000000000",
                Some("00000000-0000-0000-0000-000000000000"),
            ),
            (
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                Some("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            ),
            ("", None),
            ("5b0c2d1e8f4a4c3b9e217a6d5c4b3a29", None),
            ("{5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29}", None),
            ("urn:uuid:5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29", None),
            (" 5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29", None),
            ("5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29 ", None),
            ("5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a2", None),
            ("5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a299", None),
            ("5b0c2d1e-8f4a-4c3b-9e217a6d5c4b3a29-", None),
            ("5b0c2d1e08f4a-4c3b-9e21-7a6d5c4b3a29", None),
            ("5b0c2d1g-8f4a-4c3b-9e21-7a6d5c4b3a29", None),
            ("5b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a2é", None),
            ("5b0c2d1e_8f4a_4c3b_9e21_7a6d5c4b3a29", None),
            ("+b0c2d1e-8f4a-4c3b-9e21-7a6d5c4b3a29", None),
        ];
        for (input, expected) in table {
            check_id(input, *expected);
        }
    }

    #[test]
    fn new_ids_display_lowercase_hyphenated() {
        let id = ExecutionId::new_v4();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(ExecutionId::parse_strict(&text), Some(id));
        assert_eq!(id.as_uuid().get_version_num(), 4);
    }

    fn check_ts(millis: i64, expected: &str) {
        assert_eq!(
            Timestamp::from_millis(millis).to_rfc3339(),
            expected,
            "{millis}"
        );
    }

    #[test]
    fn timestamps_format_as_rfc3339_millis() {
        let table: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (999, "1970-01-01T00:00:00.999Z"),
            (1000, "1970-01-01T00:00:01.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-86_400_000, "1969-12-31T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (1_798_761_599_999, "2026-12-31T23:59:59.999Z"),
            (1_795_473_601_123, "2026-11-23T22:40:01.123Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        ];
        for (millis, expected) in table {
            check_ts(*millis, expected);
        }
    }

    #[test]
    fn timestamp_now_and_arithmetic() {
        let now = Timestamp::now();
        assert!(now.as_millis() > 1_700_000_000_000);
        let later = Timestamp::from_millis(now.as_millis() + 250);
        assert_eq!(later.millis_since(now), 250);
        assert_eq!(now.millis_since(later), 0);
    }

    #[test]
    fn enums_round_trip_through_text() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            as_str: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
            expected: &[&str],
        ) {
            let texts: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
            assert_eq!(texts, expected);
            for value in all {
                assert_eq!(parse(as_str(*value)), Some(*value));
                assert_eq!(parse(&as_str(*value).to_uppercase()), None);
            }
            assert_eq!(parse(""), None);
        }
        check(
            SessionStatus::ALL,
            SessionStatus::as_str,
            SessionStatus::parse,
            &["starting", "ready", "crashed", "closed"],
        );
        check(
            ExecutionKind::ALL,
            ExecutionKind::as_str,
            ExecutionKind::parse,
            &["repl", "run_file", "startup"],
        );
        check(
            ExecutionStatus::ALL,
            ExecutionStatus::as_str,
            ExecutionStatus::parse,
            &["running", "ok", "error", "timeout", "cancelled"],
        );
        check(
            CapabilityKind::ALL,
            CapabilityKind::as_str,
            CapabilityKind::parse,
            &["module", "global", "fs", "net", "env"],
        );
        check(
            EventType::ALL,
            EventType::as_str,
            EventType::parse,
            &["input_echo", "console", "value", "exception", "system"],
        );
    }

    #[test]
    fn settings_defaults_match_the_spec() {
        let id = TemplateId::new_v4();
        let settings = Settings::defaults(id, Timestamp::from_millis(5));
        assert_eq!(
            (
                settings.limits.cpu_ms,
                settings.limits.wall_ms,
                settings.limits.mem_mb
            ),
            (5000, 30_000, 128)
        );
        assert_eq!(
            (settings.limits.max_events, settings.limits.max_output_kb),
            (1000, 512)
        );
        assert!(settings.resolver.roots.is_empty());
        assert_eq!(settings.resolver.extensions, [".js", ".mjs"]);
        assert!(!settings.resolver.allow_absolute_repo_imports);
        assert_eq!(
            settings.runtime,
            RuntimeSettings {
                esm: false,
                strict: false,
                console: true
            }
        );
    }
}
