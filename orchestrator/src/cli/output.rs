//! Rendering for spec §11 output: aligned tables, `field  value` lines, the execution transcript,
//! and the column sets of every list. Functions build strings; `emit` writes them to stdout.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use serde_json::Value;

/// A list's columns: header and the JSON field each column shows.
pub(crate) struct Columns(pub(crate) &'static [(&'static str, &'static str)]);

pub(crate) const TEMPLATES: Columns = Columns(&[
    ("ID", "id"),
    ("NAME", "name"),
    ("ENGINE", "engine"),
    ("MODULES", "exposed_modules"),
    ("LIBRARIES", "libraries"),
    ("CREATED_AT", "created_at"),
]);
pub(crate) const SESSIONS: Columns = Columns(&[
    ("ID", "id"),
    ("TEMPLATE_ID", "template_id"),
    ("STATUS", "status"),
    ("PID", "pid"),
    ("WORKTREE_PATH", "worktree_path"),
    ("CREATED_AT", "created_at"),
]);
pub(crate) const EXECUTIONS: Columns = Columns(&[
    ("ID", "id"),
    ("KIND", "kind"),
    ("STATUS", "status"),
    ("STARTED_AT", "started_at"),
    ("WALL_MS", "metrics.wall_ms"),
]);
pub(crate) const CAPABILITIES: Columns = Columns(&[
    ("ID", "id"),
    ("KIND", "kind"),
    ("NAME", "name"),
    ("ENABLED", "enabled"),
    ("CONFIG", "config"),
]);
pub(crate) const STARTUP_FILES: Columns = Columns(&[
    ("ID", "id"),
    ("ORDER", "order_index"),
    ("PATH", "path"),
    ("MODE", "mode"),
]);
pub(crate) const MODULE_CATALOG: Columns = Columns(&[
    ("ID", "id"),
    ("FUNCTIONS", "functions"),
    ("REQUIRES_CAPABILITY", "requires_capability"),
]);
pub(crate) const LIBRARY_CATALOG: Columns = Columns(&[
    ("ID", "id"),
    ("VERSION", "version"),
    ("GLOBAL", "global"),
    ("CACHED", "cached"),
]);
pub(crate) const EVENTS: Columns = Columns(&[
    ("SEQ", "seq"),
    ("TS", "ts"),
    ("TYPE", "type"),
    ("PAYLOAD", "payload"),
]);
pub(crate) const LIBS: Columns = Columns(&[
    ("ID", "id"),
    ("VERSION", "version"),
    ("STATUS", "status"),
    ("PATH", "path"),
]);

/// Writes text (which ends with a newline unless empty) to stdout and flushes it.
pub(crate) fn emit(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// One line of compact JSON: the API body exactly as received.
pub(crate) fn json_line(raw: &str) -> String {
    format!("{}\n", raw.trim_end())
}

/// Text as a terminal should show it: control characters (C0 but tab, and newline unless `lines`
/// keeps it; DEL; C1) are written as `\xNN`, so that what a session prints (or a name someone
/// chose) cannot move the cursor, recolour or retitle the terminal, set its clipboard, or break a
/// table's rows.
pub(crate) fn printable(text: &str, lines: bool) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() && c != '\t' && !(lines && c == '\n');
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A value inside a table: strings raw, `null` as `-`, lists of strings comma-separated, other
/// nested values as compact JSON.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => printable(s, false).into_owned(),
        Value::Array(items) if items.is_empty() => "-".to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| printable(s, false))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// A value on a `field  value` line: like `cell`, but lists always as compact JSON.
fn field_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::String(s) => printable(s, false).into_owned(),
        other => other.to_string(),
    }
}

/// Reads a dotted path (`metrics.wall_ms`) from an object.
fn lookup<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(value, |v, key| &v[key])
}

/// Aligned columns separated by two spaces; the last column is not padded. Cells are measured
/// in terminal columns (a CJK character takes two, a combining mark none).
pub(crate) fn align(rows: &[Vec<String>]) -> String {
    use unicode_width::UnicodeWidthStr as _;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[i] - cell.width() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A list: a header row plus one row per item.
pub(crate) fn table(columns: &Columns, items: &Value) -> String {
    let mut rows = vec![columns.0.iter().map(|(h, _)| (*h).to_string()).collect()];
    for item in items.as_array().map(Vec::as_slice).unwrap_or_default() {
        rows.push(
            columns
                .0
                .iter()
                .map(|(_, path)| cell(lookup(item, path)))
                .collect(),
        );
    }
    align(&rows)
}

/// A list of strings (modules, libraries) under the single column `NAME`.
pub(crate) fn names(items: &Value) -> String {
    let mut rows = vec![vec!["NAME".to_string()]];
    for item in items.as_array().map(Vec::as_slice).unwrap_or_default() {
        rows.push(vec![cell(item)]);
    }
    align(&rows)
}

/// A single object as aligned `field  value` lines.
pub(crate) fn fields(object: &Value) -> String {
    let Some(map) = object.as_object() else {
        return format!("{}\n", field_value(object));
    };
    let rows: Vec<Vec<String>> = map
        .iter()
        .map(|(k, v)| vec![k.clone(), field_value(v)])
        .collect();
    align(&rows)
}

/// One transcript line for an event, or `None` for events the transcript leaves out.
pub(crate) fn event_line(event: &Value) -> Option<String> {
    let payload = &event["payload"];
    let text = |key: &str| printable(payload[key].as_str().unwrap_or(""), true).into_owned();
    match event["type"].as_str().unwrap_or("") {
        "input_echo" => None,
        "console" => Some(format!("[{}] {}", text("level"), text("text"))),
        "value" => Some(format!("=> {}", text("preview"))),
        "exception" => Some(match payload["name"].as_str() {
            Some(name) => format!("Uncaught {}: {}", printable(name, false), text("message")),
            None => format!("Uncaught {}", text("message")),
        }),
        "system" => Some(format!("[system] {}", text("message"))),
        other => Some(format!("[{other}] {payload}")),
    }
}

/// The final transcript line: `-- execution <id> <status>[ <code>] (<wall_ms> ms)`.
pub(crate) fn execution_footer(execution: &Value) -> String {
    let mut line = format!(
        "-- execution {} {}",
        execution["id"].as_str().unwrap_or(""),
        execution["status"].as_str().unwrap_or("")
    );
    if let Some(code) = execution["error"]["code"].as_str() {
        line.push(' ');
        line.push_str(code);
    }
    line.push_str(&format!(" ({} ms)", cell(&execution["metrics"]["wall_ms"])));
    line
}

/// The transcript of an ExecutionDetail: one line per event, then the footer.
pub(crate) fn transcript(detail: &Value) -> String {
    let mut out = String::new();
    for event in detail["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(line) = event_line(event) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str(&execution_footer(detail));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn transcript_follows_the_spec_forms() {
        let detail = json!({
            "id": "e1", "status": "error",
            "error": {"code": "EXCEPTION", "message": "boom", "name": "Error", "stack": null},
            "metrics": {"wall_ms": 4},
            "events": [
                {"seq": 1, "type": "input_echo", "payload": {"text": "x"}},
                {"seq": 2, "type": "console", "payload": {"level": "warn", "text": "hi"}},
                {"seq": 3, "type": "value", "payload": {"type": "number", "preview": "42", "json": 42}},
                {"seq": 4, "type": "exception", "payload": {"name": null, "message": "7", "stack": null}},
                {"seq": 5, "type": "exception", "payload": {"name": "Error", "message": "boom", "stack": "s"}},
                {"seq": 6, "type": "system", "payload": {"level": "error", "message": "stopped"}},
            ]
        });
        assert_eq!(
            transcript(&detail),
            "[warn] hi\n=> 42\nUncaught 7\nUncaught Error: boom\n[system] stopped\n\
             -- execution e1 error EXCEPTION (4 ms)\n"
        );
        let ok = json!({"id": "e2", "status": "ok", "error": null, "metrics": {"wall_ms": 0}, "events": []});
        assert_eq!(transcript(&ok), "-- execution e2 ok (0 ms)\n");
    }

    #[test]
    fn control_characters_reach_the_terminal_escaped() {
        // What a session prints: escape sequences shown, not obeyed; its own lines and tabs kept.
        let detail = json!({
            "id": "e1", "status": "ok", "error": null, "metrics": {"wall_ms": 1},
            "events": [
                {"seq": 1, "type": "console", "payload": {"level": "log",
                 "text": "\u{1b}[31mred\u{1b}]52;c;eA==\u{7}\nline\ttab\u{9b}2J\r"}},
            ]
        });
        assert_eq!(
            transcript(&detail),
            "[log] \\x1b[31mred\\x1b]52;c;eA==\\x07\nline\ttab\\x9b2J\\x0d\n\
             -- execution e1 ok (1 ms)\n"
        );
        // In a table a newline would split the row.
        let items = json!([{"id": "t1", "name": "two\nlines\u{1b}[2J", "engine": "quickjs",
                            "exposed_modules": [], "libraries": [], "created_at": "x"}]);
        let out = table(&TEMPLATES, &items);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("two\\x0alines\\x1b[2J"), "{out}");
        assert_eq!(printable("plain ✓", false), "plain ✓");
    }

    #[test]
    fn tables_align_columns_and_render_cells() {
        let items = json!([
            {"id": "a", "name": "first", "engine": "quickjs", "exposed_modules": ["fs", "exec"],
             "libraries": [], "created_at": "t1"},
        ]);
        assert_eq!(
            table(&TEMPLATES, &items),
            "ID  NAME   ENGINE   MODULES  LIBRARIES  CREATED_AT\n\
             a   first  quickjs  fs,exec  -          t1\n"
        );
        let exec = json!([{"id": "x", "kind": "repl", "status": "ok", "started_at": "t", "metrics": {"wall_ms": 12}}]);
        assert!(table(&EXECUTIONS, &exec).ends_with("x   repl  ok      t           12\n"));
        assert_eq!(cell(&json!({"write": true})), r#"{"write":true}"#);
        assert_eq!(cell(&json!(null)), "-");
        // Wide characters take two terminal columns.
        let rows = vec![
            vec!["名前".to_string(), "x".to_string()],
            vec!["ab".to_string(), "y".to_string()],
        ];
        assert_eq!(align(&rows), "名前  x\nab    y\n");
    }

    #[test]
    fn single_objects_print_field_value_lines() {
        let object = json!({"status": "ok", "version": "1.0.0", "pool": {"warm": 2}, "gone": null});
        assert_eq!(
            fields(&object),
            "status   ok\nversion  1.0.0\npool     {\"warm\":2}\ngone     null\n"
        );
    }
}
