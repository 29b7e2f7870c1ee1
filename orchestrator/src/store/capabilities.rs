//! Capabilities of a template: add (unique by kind and name), list oldest first, delete.

use rusqlite::{OptionalExtension, Row, Transaction};

use super::error::StoreError;
use super::handle::Store;
use super::sql::{Json, json_text};
use super::templates::{require, touch};
use crate::model::{Capability, CapabilityId, NewCapability, TemplateId, Timestamp};

impl Store {
    /// Adds a capability. The same `(kind, name)` (case-sensitive) already on the template
    /// fails with `CapabilityExists`. Bumps the template's `updated_at`.
    pub(crate) async fn add_capability(
        &self,
        template_id: TemplateId,
        new: NewCapability,
        now: Timestamp,
    ) -> Result<Capability, StoreError> {
        self.write(move |tx| add(tx, template_id, new, now)).await
    }

    /// The template's capabilities, oldest first (`created_at`, then `id`, ascending).
    pub(crate) async fn list_capabilities(
        &self,
        template_id: TemplateId,
    ) -> Result<Vec<Capability>, StoreError> {
        self.read(move |tx| list(tx, template_id)).await
    }

    /// Deletes a capability of the template and bumps the template's `updated_at`.
    pub(crate) async fn delete_capability(
        &self,
        template_id: TemplateId,
        capability_id: CapabilityId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(move |tx| delete(tx, template_id, capability_id, now))
            .await
    }
}

fn capability_row(row: &Row<'_>) -> rusqlite::Result<Capability> {
    Ok(Capability {
        id: row.get("id")?,
        template_id: row.get("template_id")?,
        kind: row.get("kind")?,
        name: row.get("name")?,
        enabled: row.get("enabled")?,
        config: row.get::<_, Json<serde_json::Value>>("config")?.0,
        created_at: row.get("created_at")?,
    })
}

fn add(
    tx: &Transaction<'_>,
    template_id: TemplateId,
    new: NewCapability,
    now: Timestamp,
) -> Result<Capability, StoreError> {
    require(tx, template_id)?;
    let existing: Option<CapabilityId> = tx
        .prepare_cached(
            "SELECT id FROM capabilities WHERE template_id = ?1 AND kind = ?2 AND name = ?3",
        )?
        .query_row((template_id, new.kind, &new.name), |row| row.get(0))
        .optional()?;
    if let Some(capability_id) = existing {
        return Err(StoreError::CapabilityExists {
            template_id,
            capability_id,
        });
    }
    let capability = Capability {
        id: CapabilityId::new_v4(),
        template_id,
        kind: new.kind,
        name: new.name,
        enabled: new.enabled,
        config: new.config,
        created_at: now,
    };
    tx.prepare_cached(
        "INSERT INTO capabilities (id, template_id, kind, name, enabled, config, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        capability.id,
        template_id,
        capability.kind,
        &capability.name,
        capability.enabled,
        json_text(&capability.config)?,
        now,
    ))?;
    touch(tx, template_id, now)?;
    Ok(capability)
}

pub(super) fn list(
    tx: &Transaction<'_>,
    template_id: TemplateId,
) -> Result<Vec<Capability>, StoreError> {
    require(tx, template_id)?;
    let mut stmt = tx.prepare_cached(
        "SELECT id, template_id, kind, name, enabled, config, created_at FROM capabilities
         WHERE template_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt
        .query_map([template_id], capability_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn delete(
    tx: &Transaction<'_>,
    template_id: TemplateId,
    capability_id: CapabilityId,
    now: Timestamp,
) -> Result<(), StoreError> {
    require(tx, template_id)?;
    let deleted = tx
        .prepare_cached("DELETE FROM capabilities WHERE id = ?1 AND template_id = ?2")?
        .execute((capability_id, template_id))?;
    if deleted == 0 {
        return Err(StoreError::CapabilityNotFound {
            template_id,
            capability_id,
        });
    }
    touch(tx, template_id, now)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::CapabilityKind;
    use crate::store::test_support::{open_temp, ts};

    fn new(kind: CapabilityKind, name: &str, config: serde_json::Value) -> NewCapability {
        NewCapability {
            kind,
            name: name.to_owned(),
            enabled: true,
            config,
        }
    }

    #[tokio::test]
    async fn add_list_delete_capabilities() {
        let (_dir, store) = open_temp().await;
        let t = store
            .create_template("t".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        let config = json!({"z": null, "allow": ["/bin/echo"], "a": {"b": 1.5}});
        let exec = store
            .add_capability(
                t.id,
                new(CapabilityKind::Module, "exec", config.clone()),
                ts(5),
            )
            .await
            .unwrap();
        assert_eq!(exec.config, config);
        assert_eq!(store.get_template(t.id).await.unwrap().updated_at, ts(5));
        let fs = store
            .add_capability(t.id, new(CapabilityKind::Fs, "worktree", json!({})), ts(3))
            .await
            .unwrap();
        // Same name, other kind: allowed. Same kind, other case: allowed.
        let fs2 = store
            .add_capability(
                t.id,
                new(CapabilityKind::Global, "worktree", json!({})),
                ts(3),
            )
            .await
            .unwrap();
        let fs3 = store
            .add_capability(t.id, new(CapabilityKind::Fs, "Worktree", json!({})), ts(4))
            .await
            .unwrap();
        let err = store
            .add_capability(
                t.id,
                new(CapabilityKind::Fs, "worktree", json!({"write": true})),
                ts(6),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::CapabilityExists { capability_id, .. } if capability_id == fs.id),
            "{err:?}"
        );

        let listed: Vec<CapabilityId> = store
            .list_capabilities(t.id)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let (lo, hi) = if fs.id < fs2.id {
            (fs.id, fs2.id)
        } else {
            (fs2.id, fs.id)
        };
        assert_eq!(listed, [lo, hi, fs3.id, exec.id]);
        let detail = store.template_detail(t.id).await.unwrap();
        assert_eq!(detail.capabilities.len(), 4);
        assert_eq!(detail.capabilities.last(), Some(&exec));

        store.delete_capability(t.id, fs.id, ts(8)).await.unwrap();
        assert_eq!(store.get_template(t.id).await.unwrap().updated_at, ts(8));
        let err = store
            .delete_capability(t.id, fs.id, ts(9))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::CapabilityNotFound { .. }),
            "{err:?}"
        );
        // A capability of another template is not found on this one.
        let other = store
            .create_template("o".into(), "quickjs".into(), ts(1))
            .await
            .unwrap();
        let err = store
            .delete_capability(other.id, exec.id, ts(9))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::CapabilityNotFound { .. }),
            "{err:?}"
        );
        let err = store
            .list_capabilities(TemplateId::new_v4())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TemplateNotFound { .. }),
            "{err:?}"
        );
        let err = store
            .add_capability(
                TemplateId::new_v4(),
                new(CapabilityKind::Env, "HOME", json!({})),
                ts(1),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TemplateNotFound { .. }),
            "{err:?}"
        );
    }
}
