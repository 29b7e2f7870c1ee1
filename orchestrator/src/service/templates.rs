//! Templates and their settings, capabilities, startup files, modules and libraries (spec
//! §4.2–§4.7): the checks the spec orders after decoding, then the store.

use super::Service;
use crate::api::error::ApiError;
use crate::api::requests::{AddCapability, AddStartupFile, LibrarySpec, SettingsPatch};
use crate::catalog;
use crate::model::{
    Capability, CapabilityId, CapabilityKind, NewCapability, Settings, StartupFile, StartupFileId,
    Template, TemplateDetail, TemplateId, Timestamp,
};
use crate::store::StoreError;

impl Service {
    pub(crate) async fn create_template(
        &self,
        name: String,
        engine: Option<String>,
    ) -> Result<Template, ApiError> {
        let engine = engine.unwrap_or_else(|| self.engine.clone());
        if engine != self.engine {
            return Err(ApiError::EngineUnsupported {
                engine,
                supported: vec![self.engine.clone()],
            });
        }
        Ok(self
            .store
            .create_template(name, engine, Timestamp::now())
            .await?)
    }

    pub(crate) async fn template_detail(&self, id: TemplateId) -> Result<TemplateDetail, ApiError> {
        Ok(self.store.template_detail(id).await?)
    }

    pub(crate) async fn patch_settings(
        &self,
        id: TemplateId,
        patch: SettingsPatch,
    ) -> Result<Settings, ApiError> {
        let settings = self
            .store
            .update_settings(id, Timestamp::now(), move |s| {
                let l = &patch.limits;
                if let Some(v) = l.cpu_ms {
                    s.limits.cpu_ms = v;
                }
                if let Some(v) = l.wall_ms {
                    s.limits.wall_ms = v;
                }
                if let Some(v) = l.mem_mb {
                    s.limits.mem_mb = v;
                }
                if let Some(v) = l.max_events {
                    s.limits.max_events = v;
                }
                if let Some(v) = l.max_output_kb {
                    s.limits.max_output_kb = v;
                }
                let r = &patch.resolver;
                if let Some(v) = &r.roots {
                    s.resolver.roots.clone_from(v);
                }
                if let Some(v) = &r.extensions {
                    s.resolver.extensions.clone_from(v);
                }
                if let Some(v) = r.allow_absolute_repo_imports {
                    s.resolver.allow_absolute_repo_imports = v;
                }
                let rt = &patch.runtime;
                if let Some(v) = rt.esm {
                    s.runtime.esm = v;
                }
                if let Some(v) = rt.strict {
                    s.runtime.strict = v;
                }
                if let Some(v) = rt.console {
                    s.runtime.console = v;
                }
            })
            .await?;
        Ok(settings)
    }

    pub(crate) async fn add_capability(
        &self,
        id: TemplateId,
        req: AddCapability,
    ) -> Result<Capability, ApiError> {
        let kind = CapabilityKind::parse(req.kind.as_str())
            .ok_or_else(|| ApiError::validation("kind", "is not a capability kind"))?;
        let config: serde_json::Value =
            serde_json::from_str(req.config.get()).map_err(ApiError::internal)?;
        let name = req.name.clone();
        let new = NewCapability {
            kind,
            name: req.name,
            enabled: req.enabled,
            config,
        };
        match self.store.add_capability(id, new, Timestamp::now()).await {
            Ok(cap) => Ok(cap),
            Err(StoreError::CapabilityExists {
                template_id,
                capability_id,
            }) => Err(ApiError::CapabilityExists {
                template_id: template_id.as_uuid(),
                capability_id: capability_id.as_uuid(),
                kind: kind.as_str().to_string(),
                name,
            }),
            Err(err) => Err(err.into()),
        }
    }

    pub(crate) async fn delete_capability(
        &self,
        id: TemplateId,
        cap: CapabilityId,
    ) -> Result<(), ApiError> {
        Ok(self
            .store
            .delete_capability(id, cap, Timestamp::now())
            .await?)
    }

    pub(crate) async fn add_startup_file(
        &self,
        id: TemplateId,
        req: AddStartupFile,
    ) -> Result<StartupFile, ApiError> {
        self.store.get_template(id).await?;
        let path = req.check_path()?;
        req.check_mode()?;
        match self
            .store
            .add_startup_file(
                id,
                path.clone(),
                req.order_index,
                "eval".into(),
                Timestamp::now(),
            )
            .await
        {
            Ok(file) => Ok(file),
            Err(StoreError::StartupFileExists {
                template_id,
                startup_file_id,
            }) => Err(ApiError::StartupFileExists {
                template_id: template_id.as_uuid(),
                startup_file_id: startup_file_id.as_uuid(),
                path,
            }),
            Err(err) => Err(err.into()),
        }
    }

    pub(crate) async fn delete_startup_file(
        &self,
        id: TemplateId,
        file: StartupFileId,
    ) -> Result<(), ApiError> {
        Ok(self
            .store
            .delete_startup_file(id, file, Timestamp::now())
            .await?)
    }

    /// `name` is already normalised.
    pub(crate) async fn add_module(&self, id: TemplateId, name: String) -> Result<(), ApiError> {
        self.store.get_template(id).await?;
        if catalog::BUILTIN_MODULES.contains(&name.as_str()) {
            return Err(ApiError::ModuleNotAllowed {
                name,
                reason: "builtin",
            });
        }
        if catalog::module(&name).is_none() {
            return Err(ApiError::ModuleNotAllowed {
                name,
                reason: "unknown",
            });
        }
        self.store.add_module(id, name, Timestamp::now()).await?;
        Ok(())
    }

    pub(crate) async fn add_library(
        &self,
        id: TemplateId,
        raw: &str,
        spec: Result<LibrarySpec, ApiError>,
    ) -> Result<String, ApiError> {
        self.store.get_template(id).await?;
        let spec = spec?;
        if catalog::library(&spec.id).is_none() {
            return Err(ApiError::LibraryUnknown {
                name: raw.to_string(),
            });
        }
        let entry = spec.entry();
        self.store
            .add_library(id, entry.clone(), Timestamp::now())
            .await?;
        Ok(entry)
    }
}
