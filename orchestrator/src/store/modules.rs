//! A template's exposed modules and libraries: ordered lists kept in insertion order.
//!
//! Names arrive normalised by the caller (modules trimmed and lowercased; libraries as
//! `id` or `id@version` with a lowercase id). Library entries are unique by id: adding an
//! entry whose id is present replaces it in place, keeping its position (spec §4.7).

use rusqlite::{OptionalExtension, Transaction};

use super::error::StoreError;
use super::handle::Store;
use super::templates::{require, touch};
use crate::model::{TemplateId, Timestamp};

impl Store {
    /// Appends a module; returns false, changing nothing, if it is already present.
    pub(crate) async fn add_module(
        &self,
        template_id: TemplateId,
        name: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| add_module(tx, template_id, &name, now))
            .await
    }

    /// The template's modules in the order they were added.
    pub(crate) async fn list_modules(
        &self,
        template_id: TemplateId,
    ) -> Result<Vec<String>, StoreError> {
        self.read(move |tx| {
            require(tx, template_id)?;
            list_modules(tx, template_id)
        })
        .await
    }

    /// Removes a module; returns false, changing nothing, if it was absent.
    pub(crate) async fn remove_module(
        &self,
        template_id: TemplateId,
        name: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            require(tx, template_id)?;
            let removed = tx
                .prepare_cached(
                    "DELETE FROM template_modules WHERE template_id = ?1 AND name = ?2",
                )?
                .execute((template_id, &name))?;
            changed(tx, template_id, removed > 0, now)
        })
        .await
    }

    /// Adds a library entry (`id` or `id@version`). An entry with the same id is replaced
    /// in place; returns false, changing nothing, if the very same entry is present.
    pub(crate) async fn add_library(
        &self,
        template_id: TemplateId,
        entry: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| add_library(tx, template_id, &entry, now))
            .await
    }

    /// The template's library entries in load order.
    pub(crate) async fn list_libraries(
        &self,
        template_id: TemplateId,
    ) -> Result<Vec<String>, StoreError> {
        self.read(move |tx| {
            require(tx, template_id)?;
            list_libraries(tx, template_id)
        })
        .await
    }

    /// Removes the entry whose id is that of `name` (`id` or `id@version`, whatever
    /// version); returns false, changing nothing, if there was none.
    pub(crate) async fn remove_library(
        &self,
        template_id: TemplateId,
        name: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            require(tx, template_id)?;
            let removed = tx
                .prepare_cached(
                    "DELETE FROM template_libraries WHERE template_id = ?1 AND library_id = ?2",
                )?
                .execute((template_id, library_id(&name)))?;
            changed(tx, template_id, removed > 0, now)
        })
        .await
    }
}

/// The catalog id of a library entry: everything before the first `@`.
pub(crate) fn library_id(entry: &str) -> &str {
    entry.split_once('@').map_or(entry, |(id, _version)| id)
}

fn changed(
    tx: &Transaction<'_>,
    template_id: TemplateId,
    changed: bool,
    now: Timestamp,
) -> Result<bool, StoreError> {
    if changed {
        touch(tx, template_id, now)?;
    }
    Ok(changed)
}

fn add_module(
    tx: &Transaction<'_>,
    template_id: TemplateId,
    name: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    require(tx, template_id)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO template_modules (template_id, position, name)
             SELECT ?1, COALESCE(MAX(position), 0) + 1, ?2
             FROM template_modules WHERE template_id = ?1
             ON CONFLICT (template_id, name) DO NOTHING",
        )?
        .execute((template_id, name))?;
    changed(tx, template_id, inserted > 0, now)
}

pub(super) fn list_modules(
    tx: &Transaction<'_>,
    template_id: TemplateId,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT name FROM template_modules WHERE template_id = ?1 ORDER BY position",
    )?;
    let names = stmt
        .query_map([template_id], |row| row.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

fn add_library(
    tx: &Transaction<'_>,
    template_id: TemplateId,
    entry: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    require(tx, template_id)?;
    let id = library_id(entry);
    let existing: Option<String> = tx
        .prepare_cached(
            "SELECT entry FROM template_libraries WHERE template_id = ?1 AND library_id = ?2",
        )?
        .query_row((template_id, id), |row| row.get(0))
        .optional()?;
    match existing {
        Some(stored) if stored == entry => Ok(false),
        Some(_) => {
            tx.prepare_cached(
                "UPDATE template_libraries SET entry = ?3
                 WHERE template_id = ?1 AND library_id = ?2",
            )?
            .execute((template_id, id, entry))?;
            changed(tx, template_id, true, now)
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO template_libraries (template_id, position, library_id, entry)
                 SELECT ?1, COALESCE(MAX(position), 0) + 1, ?2, ?3
                 FROM template_libraries WHERE template_id = ?1",
            )?
            .execute((template_id, id, entry))?;
            changed(tx, template_id, true, now)
        }
    }
}

pub(super) fn list_libraries(
    tx: &Transaction<'_>,
    template_id: TemplateId,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT entry FROM template_libraries WHERE template_id = ?1 ORDER BY position",
    )?;
    let entries = stmt
        .query_map([template_id], |row| row.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::test_support::{open_temp, ts};

    #[test]
    fn library_ids() {
        for (entry, id) in [
            ("lodash", "lodash"),
            ("dayjs@1.11.10", "dayjs"),
            ("x@1.0.0-rc.1@y", "x"),
            ("", ""),
        ] {
            assert_eq!(library_id(entry), id, "{entry}");
        }
    }

    enum Op {
        Add(&'static str),
        Remove(&'static str),
    }

    /// Applies `ops` at increasing times and checks each result, the final list and
    /// whether the template's `updated_at` moved.
    async fn check_libraries(store: &Store, ops: &[(Op, bool)], expected: &[&str]) {
        let t = store
            .create_template(format!("t{}", expected.len()), "quickjs".into(), ts(1))
            .await
            .unwrap();
        let mut last_change = ts(1);
        for (i, (op, changes)) in ops.iter().enumerate() {
            let now = ts(10 + i64::try_from(i).unwrap());
            let result = match op {
                Op::Add(e) => store.add_library(t.id, (*e).into(), now).await,
                Op::Remove(e) => store.remove_library(t.id, (*e).into(), now).await,
            };
            assert_eq!(result.unwrap(), *changes, "op {i}");
            if *changes {
                last_change = now;
            }
            assert_eq!(
                store.get_template(t.id).await.unwrap().updated_at,
                last_change
            );
        }
        assert_eq!(store.list_libraries(t.id).await.unwrap(), expected);
        assert_eq!(store.get_template(t.id).await.unwrap().libraries, expected);
    }

    #[tokio::test]
    async fn libraries_replace_in_place() {
        let (_dir, store) = open_temp().await;
        use Op::{Add, Remove};
        check_libraries(
            &store,
            &[
                (Add("lodash"), true),
                (Add("dayjs"), true),
                (Add("ramda"), true),
                (Add("lodash@4.17.20"), true),
                (Add("lodash@4.17.20"), false),
                (Remove("moment"), false),
            ],
            &["lodash@4.17.20", "dayjs", "ramda"],
        )
        .await;
        check_libraries(
            &store,
            &[
                (Add("dayjs@1.11.10"), true),
                (Add("moment"), true),
                (Remove("dayjs@9.9.9"), true),
                (Add("dayjs"), true),
                (Add("moment@2.29.4"), true),
            ],
            &["moment@2.29.4", "dayjs"],
        )
        .await;
    }

    #[tokio::test]
    async fn modules_are_idempotent_and_ordered() {
        let (_dir, store) = open_temp().await;
        let t = store
            .create_template("t".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        assert!(store.add_module(t.id, "fs".into(), ts(2)).await.unwrap());
        assert!(store.add_module(t.id, "exec".into(), ts(3)).await.unwrap());
        assert!(!store.add_module(t.id, "fs".into(), ts(4)).await.unwrap());
        assert_eq!(store.get_template(t.id).await.unwrap().updated_at, ts(3));
        assert!(
            store
                .add_module(t.id, "database".into(), ts(5))
                .await
                .unwrap()
        );
        assert!(
            store
                .remove_module(t.id, "exec".into(), ts(6))
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_module(t.id, "exec".into(), ts(7))
                .await
                .unwrap()
        );
        assert!(store.add_module(t.id, "exec".into(), ts(8)).await.unwrap());
        assert_eq!(
            store.list_modules(t.id).await.unwrap(),
            ["fs", "database", "exec"]
        );
        let template = store.get_template(t.id).await.unwrap();
        assert_eq!(template.exposed_modules, ["fs", "database", "exec"]);
        assert_eq!(template.updated_at, ts(8));
        let err = store
            .add_module(TemplateId::new_v4(), "fs".into(), ts(1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TemplateNotFound { .. }),
            "{err:?}"
        );
        let err = store
            .remove_library(TemplateId::new_v4(), "fs".into(), ts(1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TemplateNotFound { .. }),
            "{err:?}"
        );
    }
}
