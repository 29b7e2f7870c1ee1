//! Startup files of a template: add (unique by cleaned path), list in run order, delete.

use rusqlite::{OptionalExtension, Row, Transaction};

use super::error::StoreError;
use super::handle::Store;
use super::templates::{require, touch};
use crate::model::{StartupFile, StartupFileId, TemplateId, Timestamp};

impl Store {
    /// Adds a startup file. `path` must already be cleaned and `mode` normalised by the
    /// caller. The same path on the template fails with `StartupFileExists`.
    pub(crate) async fn add_startup_file(
        &self,
        template_id: TemplateId,
        path: String,
        order_index: i32,
        mode: String,
        now: Timestamp,
    ) -> Result<StartupFile, StoreError> {
        self.write(move |tx| {
            let file = StartupFile {
                id: StartupFileId::new_v4(),
                template_id,
                path,
                order_index,
                mode,
                created_at: now,
            };
            add(tx, file)
        })
        .await
    }

    /// The template's startup files in run order: `order_index`, then `created_at`, then
    /// `id`, all ascending (spec §4.5).
    pub(crate) async fn list_startup_files(
        &self,
        template_id: TemplateId,
    ) -> Result<Vec<StartupFile>, StoreError> {
        self.read(move |tx| list(tx, template_id)).await
    }

    /// Deletes a startup file of the template and bumps the template's `updated_at`.
    pub(crate) async fn delete_startup_file(
        &self,
        template_id: TemplateId,
        startup_file_id: StartupFileId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(move |tx| delete(tx, template_id, startup_file_id, now))
            .await
    }
}

fn startup_file_row(row: &Row<'_>) -> rusqlite::Result<StartupFile> {
    Ok(StartupFile {
        id: row.get("id")?,
        template_id: row.get("template_id")?,
        path: row.get("path")?,
        order_index: row.get("order_index")?,
        mode: row.get("mode")?,
        created_at: row.get("created_at")?,
    })
}

fn add(tx: &Transaction<'_>, file: StartupFile) -> Result<StartupFile, StoreError> {
    let template_id = file.template_id;
    require(tx, template_id)?;
    let existing: Option<StartupFileId> = tx
        .prepare_cached("SELECT id FROM startup_files WHERE template_id = ?1 AND path = ?2")?
        .query_row((template_id, &file.path), |row| row.get(0))
        .optional()?;
    if let Some(startup_file_id) = existing {
        return Err(StoreError::StartupFileExists {
            template_id,
            startup_file_id,
        });
    }
    tx.prepare_cached(
        "INSERT INTO startup_files (id, template_id, path, order_index, mode, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        file.id,
        template_id,
        &file.path,
        file.order_index,
        &file.mode,
        file.created_at,
    ))?;
    touch(tx, template_id, file.created_at)?;
    Ok(file)
}

pub(super) fn list(
    tx: &Transaction<'_>,
    template_id: TemplateId,
) -> Result<Vec<StartupFile>, StoreError> {
    require(tx, template_id)?;
    let mut stmt = tx.prepare_cached(
        "SELECT id, template_id, path, order_index, mode, created_at FROM startup_files
         WHERE template_id = ?1 ORDER BY order_index, created_at, id",
    )?;
    let rows = stmt
        .query_map([template_id], startup_file_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn delete(
    tx: &Transaction<'_>,
    template_id: TemplateId,
    startup_file_id: StartupFileId,
    now: Timestamp,
) -> Result<(), StoreError> {
    require(tx, template_id)?;
    let deleted = tx
        .prepare_cached("DELETE FROM startup_files WHERE id = ?1 AND template_id = ?2")?
        .execute((startup_file_id, template_id))?;
    if deleted == 0 {
        return Err(StoreError::StartupFileNotFound {
            template_id,
            startup_file_id,
        });
    }
    touch(tx, template_id, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{open_temp, ts};

    #[tokio::test]
    async fn startup_files_list_in_run_order() {
        let (_dir, store) = open_temp().await;
        let t = store
            .create_template("t".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        // (path, order_index, created_at)
        let table: &[(&str, i32, i64)] = &[
            ("late.js", 10, 2),
            ("neg.js", i32::MIN, 9),
            ("b.js", 0, 5),
            ("a.js", 0, 5),
            ("first-zero.js", 0, 3),
            ("max.js", i32::MAX, 1),
        ];
        let mut added = Vec::new();
        for (path, order, created) in table {
            let f = store
                .add_startup_file(t.id, (*path).into(), *order, "eval".into(), ts(*created))
                .await
                .unwrap();
            added.push(f);
        }
        let by_path = |p: &str| added.iter().find(|f| f.path == p).map(|f| f.id).unwrap();
        let (a, b) = (by_path("a.js"), by_path("b.js"));
        let (tie_lo, tie_hi) = if a < b { (a, b) } else { (b, a) };
        let expected = [
            by_path("neg.js"),
            by_path("first-zero.js"),
            tie_lo,
            tie_hi,
            by_path("late.js"),
            by_path("max.js"),
        ];
        let listed: Vec<StartupFileId> = store
            .list_startup_files(t.id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(listed, expected);
        let detail = store.template_detail(t.id).await.unwrap();
        let detail_ids: Vec<_> = detail.startup_files.iter().map(|f| f.id).collect();
        assert_eq!(detail_ids, expected);
        // `updated_at` is the time of the latest change (the last add, at 1 ms).
        assert_eq!(detail.template.updated_at, ts(1));
    }

    #[tokio::test]
    async fn startup_file_paths_are_unique_per_template() {
        let (_dir, store) = open_temp().await;
        let t = store
            .create_template("t".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        let first = store
            .add_startup_file(t.id, "init.js".into(), 0, "eval".into(), ts(2))
            .await
            .unwrap();
        let err = store
            .add_startup_file(t.id, "init.js".into(), 5, "eval".into(), ts(3))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::StartupFileExists { startup_file_id, .. } if startup_file_id == first.id),
            "{err:?}"
        );
        store
            .delete_startup_file(t.id, first.id, ts(4))
            .await
            .unwrap();
        assert_eq!(store.get_template(t.id).await.unwrap().updated_at, ts(4));
        let err = store
            .delete_startup_file(t.id, first.id, ts(5))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::StartupFileNotFound { .. }),
            "{err:?}"
        );
        store
            .add_startup_file(t.id, "init.js".into(), 0, "eval".into(), ts(6))
            .await
            .unwrap();
    }
}
