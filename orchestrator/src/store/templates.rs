//! Templates and their settings: create, list, detail, delete, get and update settings.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, Transaction, named_params};

use super::error::StoreError;
use super::handle::Store;
use super::sql::{Json, json_text};
use super::{capabilities, modules, startup_files};
use crate::model::{
    Limits, Resolver, RuntimeSettings, SessionId, SessionStatus, Settings, Template,
    TemplateDetail, TemplateId, Timestamp,
};

impl Store {
    /// Creates a template with default settings and no modules or libraries.
    /// A taken name (exact, case-sensitive) fails with `TemplateNameTaken`.
    pub(crate) async fn create_template(
        &self,
        name: String,
        engine: String,
        now: Timestamp,
    ) -> Result<Template, StoreError> {
        self.write(move |tx| create(tx, name, engine, now)).await
    }

    /// Every template, newest first (`created_at`, then `id`, descending).
    pub(crate) async fn list_templates(&self) -> Result<Vec<Template>, StoreError> {
        self.read(list).await
    }

    /// One template with its modules and libraries.
    pub(crate) async fn get_template(&self, id: TemplateId) -> Result<Template, StoreError> {
        self.read(move |tx| load(tx, id)).await
    }

    /// The template, its settings, its capabilities (oldest first) and its startup files
    /// (in run order).
    pub(crate) async fn template_detail(
        &self,
        id: TemplateId,
    ) -> Result<TemplateDetail, StoreError> {
        self.read(move |tx| {
            Ok(TemplateDetail {
                template: load(tx, id)?,
                settings: load_settings(tx, id)?,
                capabilities: capabilities::list(tx, id)?,
                startup_files: startup_files::list(tx, id)?,
            })
        })
        .await
    }

    /// Deletes the template with its settings, capabilities, startup files, modules and
    /// libraries. Fails with `TemplateInUse` while any of its sessions is not `closed`;
    /// closed sessions keep their rows and `template_id`.
    pub(crate) async fn delete_template(&self, id: TemplateId) -> Result<(), StoreError> {
        self.write(move |tx| delete(tx, id)).await
    }

    pub(crate) async fn get_settings(&self, id: TemplateId) -> Result<Settings, StoreError> {
        self.read(move |tx| load_settings(tx, id)).await
    }

    /// Reads the settings, lets `patch` change them and writes the result, all in one
    /// transaction. If anything changed, the settings' and the template's `updated_at`
    /// become `now`; `template_id` and `updated_at` set by `patch` are ignored.
    pub(crate) async fn update_settings<F>(
        &self,
        id: TemplateId,
        now: Timestamp,
        patch: F,
    ) -> Result<Settings, StoreError>
    where
        F: FnOnce(&mut Settings) + Send + 'static,
    {
        self.write(move |tx| update_settings(tx, id, now, patch))
            .await
    }

    /// Replaces the whole settings object.
    pub(crate) async fn put_settings(
        &self,
        id: TemplateId,
        limits: Limits,
        resolver: Resolver,
        runtime: RuntimeSettings,
        now: Timestamp,
    ) -> Result<Settings, StoreError> {
        self.update_settings(id, now, move |settings| {
            settings.limits = limits;
            settings.resolver = resolver;
            settings.runtime = runtime;
        })
        .await
    }
}

const TEMPLATE_COLUMNS: &str = "id, name, engine, created_at, updated_at";

/// A template row without its modules and libraries.
fn template_row(row: &Row<'_>) -> rusqlite::Result<Template> {
    Ok(Template {
        id: row.get("id")?,
        name: row.get("name")?,
        engine: row.get("engine")?,
        exposed_modules: Vec::new(),
        libraries: Vec::new(),
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// Fails with `TemplateNotFound` unless the template exists.
pub(super) fn require(tx: &Transaction<'_>, id: TemplateId) -> Result<(), StoreError> {
    let found = tx
        .prepare_cached("SELECT 1 FROM templates WHERE id = ?1")?
        .exists([id])?;
    if found {
        Ok(())
    } else {
        Err(StoreError::TemplateNotFound { template_id: id })
    }
}

/// Records a change to the template or anything hanging off it.
pub(super) fn touch(
    tx: &Transaction<'_>,
    id: TemplateId,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE templates SET updated_at = ?2 WHERE id = ?1")?
        .execute((id, now))?;
    Ok(())
}

fn create(
    tx: &Transaction<'_>,
    name: String,
    engine: String,
    now: Timestamp,
) -> Result<Template, StoreError> {
    let existing: Option<TemplateId> = tx
        .prepare_cached("SELECT id FROM templates WHERE name = ?1")?
        .query_row([&name], |row| row.get(0))
        .optional()?;
    if let Some(template_id) = existing {
        return Err(StoreError::TemplateNameTaken { name, template_id });
    }
    let id = TemplateId::new_v4();
    let settings = Settings::defaults(id, now);
    let Settings {
        limits,
        resolver,
        runtime,
        ..
    } = &settings;
    tx.prepare_cached(
        "INSERT INTO templates (id, name, engine, created_at, updated_at,
             settings_updated_at, cpu_ms, wall_ms, mem_mb, max_events, max_output_kb,
             resolver_roots, resolver_extensions, allow_absolute_repo_imports,
             runtime_esm, runtime_strict, runtime_console)
         VALUES (:id, :name, :engine, :now, :now, :now, :cpu_ms, :wall_ms, :mem_mb,
             :max_events, :max_output_kb, :roots, :extensions, :absolute, :esm, :strict,
             :console)",
    )?
    .execute(named_params! {
        ":id": id,
        ":name": name,
        ":engine": engine,
        ":now": now,
        ":cpu_ms": limits.cpu_ms,
        ":wall_ms": limits.wall_ms,
        ":mem_mb": limits.mem_mb,
        ":max_events": limits.max_events,
        ":max_output_kb": limits.max_output_kb,
        ":roots": json_text(&resolver.roots)?,
        ":extensions": json_text(&resolver.extensions)?,
        ":absolute": resolver.allow_absolute_repo_imports,
        ":esm": runtime.esm,
        ":strict": runtime.strict,
        ":console": runtime.console,
    })?;
    Ok(Template {
        id,
        name,
        engine,
        exposed_modules: Vec::new(),
        libraries: Vec::new(),
        created_at: now,
        updated_at: now,
    })
}

pub(super) fn load(tx: &Transaction<'_>, id: TemplateId) -> Result<Template, StoreError> {
    let template = tx
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?1"
        ))?
        .query_row([id], template_row)
        .optional()?;
    let mut template = template.ok_or(StoreError::TemplateNotFound { template_id: id })?;
    template.exposed_modules = modules::list_modules(tx, id)?;
    template.libraries = modules::list_libraries(tx, id)?;
    Ok(template)
}

fn list(tx: &Transaction<'_>) -> Result<Vec<Template>, StoreError> {
    let mut modules: HashMap<TemplateId, Vec<String>> = HashMap::new();
    let mut stmt = tx.prepare_cached(
        "SELECT template_id, name FROM template_modules ORDER BY template_id, position",
    )?;
    for row in stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))? {
        let (id, name): (TemplateId, String) = row?;
        modules.entry(id).or_default().push(name);
    }
    let mut libraries: HashMap<TemplateId, Vec<String>> = HashMap::new();
    let mut stmt = tx.prepare_cached(
        "SELECT template_id, entry FROM template_libraries ORDER BY template_id, position",
    )?;
    for row in stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))? {
        let (id, entry): (TemplateId, String) = row?;
        libraries.entry(id).or_default().push(entry);
    }
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates ORDER BY created_at DESC, id DESC"
    ))?;
    let templates = stmt
        .query_map([], template_row)?
        .map(|row| {
            let mut template = row?;
            template.exposed_modules = modules.remove(&template.id).unwrap_or_default();
            template.libraries = libraries.remove(&template.id).unwrap_or_default();
            Ok(template)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(templates)
}

fn delete(tx: &Transaction<'_>, id: TemplateId) -> Result<(), StoreError> {
    require(tx, id)?;
    let mut stmt = tx.prepare_cached(
        "SELECT id FROM sessions WHERE template_id = ?1 AND status != ?2 ORDER BY id",
    )?;
    let session_ids = stmt
        .query_map((id, SessionStatus::Closed), |row| row.get(0))?
        .collect::<Result<Vec<SessionId>, _>>()?;
    if !session_ids.is_empty() {
        return Err(StoreError::TemplateInUse {
            template_id: id,
            session_ids,
        });
    }
    // Capabilities, startup files, modules and libraries go by ON DELETE CASCADE.
    tx.prepare_cached("DELETE FROM templates WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

fn settings_row(row: &Row<'_>) -> rusqlite::Result<Settings> {
    Ok(Settings {
        template_id: row.get("id")?,
        updated_at: row.get("settings_updated_at")?,
        limits: Limits {
            cpu_ms: row.get("cpu_ms")?,
            wall_ms: row.get("wall_ms")?,
            mem_mb: row.get("mem_mb")?,
            max_events: row.get("max_events")?,
            max_output_kb: row.get("max_output_kb")?,
        },
        resolver: Resolver {
            roots: row.get::<_, Json<Vec<String>>>("resolver_roots")?.0,
            extensions: row.get::<_, Json<Vec<String>>>("resolver_extensions")?.0,
            allow_absolute_repo_imports: row.get("allow_absolute_repo_imports")?,
        },
        runtime: RuntimeSettings {
            esm: row.get("runtime_esm")?,
            strict: row.get("runtime_strict")?,
            console: row.get("runtime_console")?,
        },
    })
}

pub(super) fn load_settings(tx: &Transaction<'_>, id: TemplateId) -> Result<Settings, StoreError> {
    tx.prepare_cached(
        "SELECT id, settings_updated_at, cpu_ms, wall_ms, mem_mb, max_events, max_output_kb,
             resolver_roots, resolver_extensions, allow_absolute_repo_imports,
             runtime_esm, runtime_strict, runtime_console
         FROM templates WHERE id = ?1",
    )?
    .query_row([id], settings_row)
    .optional()?
    .ok_or(StoreError::TemplateNotFound { template_id: id })
}

fn update_settings(
    tx: &Transaction<'_>,
    id: TemplateId,
    now: Timestamp,
    patch: impl FnOnce(&mut Settings),
) -> Result<Settings, StoreError> {
    let before = load_settings(tx, id)?;
    let mut after = before.clone();
    patch(&mut after);
    after.template_id = before.template_id;
    after.updated_at = before.updated_at;
    if after == before {
        return Ok(before);
    }
    after.updated_at = now;
    let Settings {
        limits,
        resolver,
        runtime,
        ..
    } = &after;
    tx.prepare_cached(
        "UPDATE templates SET updated_at = :now, settings_updated_at = :now,
             cpu_ms = :cpu_ms, wall_ms = :wall_ms, mem_mb = :mem_mb,
             max_events = :max_events, max_output_kb = :max_output_kb,
             resolver_roots = :roots, resolver_extensions = :extensions,
             allow_absolute_repo_imports = :absolute,
             runtime_esm = :esm, runtime_strict = :strict, runtime_console = :console
         WHERE id = :id",
    )?
    .execute(named_params! {
        ":id": id,
        ":now": now,
        ":cpu_ms": limits.cpu_ms,
        ":wall_ms": limits.wall_ms,
        ":mem_mb": limits.mem_mb,
        ":max_events": limits.max_events,
        ":max_output_kb": limits.max_output_kb,
        ":roots": json_text(&resolver.roots)?,
        ":extensions": json_text(&resolver.extensions)?,
        ":absolute": resolver.allow_absolute_repo_imports,
        ":esm": runtime.esm,
        ":strict": runtime.strict,
        ":console": runtime.console,
    })?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionStatus;
    use crate::store::test_support::{open_temp, session, ts};

    #[tokio::test]
    async fn create_get_and_list_templates() {
        let (_dir, store) = open_temp().await;
        let a = store
            .create_template("a".into(), "quickjs".into(), ts(10))
            .await
            .unwrap();
        assert_eq!((a.created_at, a.updated_at), (ts(10), ts(10)));
        assert!(a.exposed_modules.is_empty() && a.libraries.is_empty());
        let b = store
            .create_template("b".into(), "quickjs".into(), ts(20))
            .await
            .unwrap();
        // Same created_at as `b`: the tie is broken by id descending.
        let c = store
            .create_template("c".into(), "quickjs".into(), ts(20))
            .await
            .unwrap();
        assert_eq!(store.get_template(a.id).await.unwrap(), a);
        let listed: Vec<TemplateId> = store
            .list_templates()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        let (hi, lo) = if b.id > c.id {
            (b.id, c.id)
        } else {
            (c.id, b.id)
        };
        assert_eq!(listed, [hi, lo, a.id]);

        let missing = TemplateId::new_v4();
        let err = store.get_template(missing).await.unwrap_err();
        assert!(
            matches!(err, StoreError::TemplateNotFound { template_id } if template_id == missing)
        );
    }

    #[tokio::test]
    async fn template_names_are_unique_and_case_sensitive() {
        let (_dir, store) = open_temp().await;
        let first = store
            .create_template("analytics".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        let err = store
            .create_template("analytics".into(), "quickjs".into(), ts(2))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::TemplateNameTaken { name, template_id }
                if name == "analytics" && *template_id == first.id),
            "{err:?}"
        );
        store
            .create_template("Analytics".into(), "quickjs".into(), ts(3))
            .await
            .unwrap();
        // Deleting frees the name.
        store.delete_template(first.id).await.unwrap();
        store
            .create_template("analytics".into(), "quickjs".into(), ts(4))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn delete_is_refused_while_sessions_are_not_closed() {
        let (_dir, store) = open_temp().await;
        let t = store
            .create_template("t".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        store.add_module(t.id, "fs".into(), ts(2)).await.unwrap();
        let mut live = Vec::new();
        for status in [
            SessionStatus::Starting,
            SessionStatus::Ready,
            SessionStatus::Crashed,
        ] {
            let s = session(t.id, status, ts(3));
            store.insert_session(s.clone()).await.unwrap();
            live.push(s.id);
        }
        let closed = session(t.id, SessionStatus::Closed, ts(3));
        store.insert_session(closed.clone()).await.unwrap();
        live.sort();
        let err = store.delete_template(t.id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::TemplateInUse { template_id, session_ids }
                if *template_id == t.id && *session_ids == live),
            "{err:?}"
        );
        for id in &live {
            let update = crate::model::SessionUpdate {
                status: SessionStatus::Closed,
                pid: None,
                last_error: None,
            };
            store.set_session_state(*id, update, ts(4)).await.unwrap();
        }
        store.delete_template(t.id).await.unwrap();
        assert!(matches!(
            store.template_detail(t.id).await.unwrap_err(),
            StoreError::TemplateNotFound { .. }
        ));
        // Closed sessions survive and keep naming the deleted template.
        assert_eq!(
            store.get_session(closed.id).await.unwrap().template_id,
            t.id
        );
        assert!(matches!(
            store.delete_template(t.id).await.unwrap_err(),
            StoreError::TemplateNotFound { .. }
        ));
    }

    #[tokio::test]
    async fn settings_default_then_update_bumps_updated_at() {
        let (_dir, store) = open_temp().await;
        let t = store
            .create_template("t".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        let defaults = store.get_settings(t.id).await.unwrap();
        assert_eq!(defaults, Settings::defaults(t.id, ts(1)));

        // An empty patch changes nothing, `updated_at` included.
        let same = store.update_settings(t.id, ts(5), |_| {}).await.unwrap();
        assert_eq!(same, defaults);
        assert_eq!(store.get_template(t.id).await.unwrap().updated_at, ts(1));

        let updated = store
            .update_settings(t.id, ts(7), |s| {
                s.limits.wall_ms = 1234;
                s.resolver.roots = vec!["lib".into(), "src/x".into()];
                s.runtime.strict = true;
                s.updated_at = ts(999);
            })
            .await
            .unwrap();
        assert_eq!(updated.updated_at, ts(7));
        assert_eq!(updated.limits.wall_ms, 1234);
        assert_eq!(store.get_settings(t.id).await.unwrap(), updated);
        assert_eq!(store.get_template(t.id).await.unwrap().updated_at, ts(7));

        let put = store
            .put_settings(
                t.id,
                Limits::default(),
                Resolver::default(),
                RuntimeSettings::default(),
                ts(9),
            )
            .await
            .unwrap();
        assert_eq!(put, Settings::defaults(t.id, ts(9)));
        let detail = store.template_detail(t.id).await.unwrap();
        assert_eq!(detail.settings, put);
        assert_eq!(detail.template.updated_at, ts(9));

        let missing = TemplateId::new_v4();
        assert!(matches!(
            store.get_settings(missing).await.unwrap_err(),
            StoreError::TemplateNotFound { .. }
        ));
    }
}
