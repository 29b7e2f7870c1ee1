//! Handlers of `/templates/**` and the catalogs (spec §4.1–§4.7): extract, call the service,
//! map to a DTO.

use axum::extract::State;

use super::convert;
use super::dto::{
    CapabilityDeleted, Created, EntryDeleted, Json, StartupFileDeleted, StatusOk, TemplateDeleted,
    TemplateEntry,
};
use super::error::{ApiError, Envelope as ErrorEnvelope};
use super::extract::{NoQuery, PathParams, StrictJson, StrictQuery};
use super::requests::{
    AddCapability, AddLibrary, AddModule, AddStartupFile, CreateTemplate, SettingsPatch,
    library_id_of, normalize_module_name,
};
use crate::model::{CapabilityId, StartupFileId, TemplateId};
use crate::service::Service;

type Res<T> = Result<T, ApiError>;

fn template_id(p: &PathParams) -> Res<TemplateId> {
    Ok(TemplateId::from_uuid(p.id("template_id")?))
}

#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", operation_id = "create_template",
    request_body = CreateTemplate,
    responses(
        (status = 201, description = "The new template, with default settings", body = super::dto::Template),
        (status = 409, description = "`TEMPLATE_NAME_TAKEN`", body = ErrorEnvelope),
        (status = 422, description = "`ENGINE_UNSUPPORTED`", body = ErrorEnvelope),
    ))]
pub(crate) async fn create(
    State(svc): State<Service>,
    StrictJson(req): StrictJson<CreateTemplate>,
) -> Res<Created<super::dto::Template>> {
    let template = svc.create_template(req.name, req.engine).await?;
    Ok(Created(convert::template(template)))
}

#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", operation_id = "list_templates",
    responses((status = 200, description = "Every template, newest first", body = Vec<super::dto::Template>)))]
pub(crate) async fn list(
    State(svc): State<Service>,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<super::dto::Template>>> {
    let templates = svc.store.list_templates().await?;
    Ok(Json(templates.into_iter().map(convert::template).collect()))
}

#[utoipa::path(get, path = "/api/v1/templates/{template_id}", tag = "templates", operation_id = "get_template",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The template with its settings, capabilities and startup files", body = super::dto::TemplateDetail),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn get(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<super::dto::TemplateDetail>> {
    let detail = svc.template_detail(template_id(&p)?).await?;
    Ok(Json(convert::template_detail(detail)?))
}

#[utoipa::path(delete, path = "/api/v1/templates/{template_id}", tag = "templates", operation_id = "delete_template",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    responses(
        (status = 200, description = "Deleted", body = TemplateDeleted),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
        (status = 409, description = "`TEMPLATE_IN_USE`", body = ErrorEnvelope),
    ))]
pub(crate) async fn delete(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<TemplateDeleted>> {
    let id = template_id(&p)?;
    svc.store.delete_template(id).await?;
    Ok(Json(TemplateDeleted {
        status: StatusOk,
        template_id: id.as_uuid(),
    }))
}

#[utoipa::path(get, path = "/api/v1/templates/{template_id}/settings", tag = "templates", operation_id = "get_settings",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The template's settings", body = super::dto::Settings),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn get_settings(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<super::dto::Settings>> {
    let settings = svc.store.get_settings(template_id(&p)?).await?;
    Ok(Json(convert::settings(settings)))
}

#[utoipa::path(patch, path = "/api/v1/templates/{template_id}/settings", tag = "templates", operation_id = "patch_settings",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "The full settings after the change", body = super::dto::Settings),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn patch_settings(
    State(svc): State<Service>,
    p: PathParams,
    StrictJson(req): StrictJson<SettingsPatch>,
) -> Res<Json<super::dto::Settings>> {
    let settings = svc.patch_settings(template_id(&p)?, req).await?;
    Ok(Json(convert::settings(settings)))
}

#[utoipa::path(post, path = "/api/v1/templates/{template_id}/capabilities", tag = "templates", operation_id = "add_capability",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    request_body = AddCapability,
    responses(
        (status = 201, description = "The new capability", body = super::dto::Capability),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
        (status = 409, description = "`CAPABILITY_EXISTS`", body = ErrorEnvelope),
    ))]
pub(crate) async fn add_capability(
    State(svc): State<Service>,
    p: PathParams,
    StrictJson(req): StrictJson<AddCapability>,
) -> Res<Created<super::dto::Capability>> {
    let cap = svc.add_capability(template_id(&p)?, req).await?;
    Ok(Created(convert::capability(cap)?))
}

#[utoipa::path(get, path = "/api/v1/templates/{template_id}/capabilities", tag = "templates", operation_id = "list_capabilities",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The template's capabilities, oldest first", body = Vec<super::dto::Capability>),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn list_capabilities(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<super::dto::Capability>>> {
    let caps = svc.store.list_capabilities(template_id(&p)?).await?;
    Ok(Json(
        caps.into_iter()
            .map(convert::capability)
            .collect::<Res<_>>()?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/templates/{template_id}/capabilities/{capability_id}", tag = "templates", operation_id = "delete_capability",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)"), ("capability_id" = Uuid, Path, description = "Capability id (hyphenated UUID)")),
    responses(
        (status = 200, description = "Deleted", body = CapabilityDeleted),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`, `CAPABILITY_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn delete_capability(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<CapabilityDeleted>> {
    let id = template_id(&p)?;
    let cap = CapabilityId::from_uuid(p.id("capability_id")?);
    svc.delete_capability(id, cap).await?;
    Ok(Json(CapabilityDeleted {
        status: StatusOk,
        template_id: id.as_uuid(),
        capability_id: cap.as_uuid(),
    }))
}

#[utoipa::path(post, path = "/api/v1/templates/{template_id}/startup-files", tag = "templates", operation_id = "add_startup_file",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    request_body = AddStartupFile,
    responses(
        (status = 201, description = "The new startup file", body = super::dto::StartupFile),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
        (status = 409, description = "`STARTUP_FILE_EXISTS`", body = ErrorEnvelope),
        (status = 422, description = "`INVALID_PATH`, `STARTUP_MODE_UNSUPPORTED`", body = ErrorEnvelope),
    ))]
pub(crate) async fn add_startup_file(
    State(svc): State<Service>,
    p: PathParams,
    StrictJson(req): StrictJson<AddStartupFile>,
) -> Res<Created<super::dto::StartupFile>> {
    let file = svc.add_startup_file(template_id(&p)?, req).await?;
    Ok(Created(convert::startup_file(file)))
}

#[utoipa::path(get, path = "/api/v1/templates/{template_id}/startup-files", tag = "templates", operation_id = "list_startup_files",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    responses(
        (status = 200, description = "The template's startup files in run order", body = Vec<super::dto::StartupFile>),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn list_startup_files(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<super::dto::StartupFile>>> {
    let files = svc.store.list_startup_files(template_id(&p)?).await?;
    Ok(Json(files.into_iter().map(convert::startup_file).collect()))
}

#[utoipa::path(delete, path = "/api/v1/templates/{template_id}/startup-files/{startup_file_id}", tag = "templates", operation_id = "delete_startup_file",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)"), ("startup_file_id" = Uuid, Path, description = "Startup file id (hyphenated UUID)")),
    responses(
        (status = 200, description = "Deleted", body = StartupFileDeleted),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`, `STARTUP_FILE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn delete_startup_file(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<StartupFileDeleted>> {
    let id = template_id(&p)?;
    let file = StartupFileId::from_uuid(p.id("startup_file_id")?);
    svc.delete_startup_file(id, file).await?;
    Ok(Json(StartupFileDeleted {
        status: StatusOk,
        template_id: id.as_uuid(),
        startup_file_id: file.as_uuid(),
    }))
}

#[utoipa::path(post, path = "/api/v1/templates/{template_id}/modules", tag = "templates", operation_id = "add_module",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    request_body = AddModule,
    responses(
        (status = 201, description = "The module is exposed (also when it already was)", body = TemplateEntry),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
        (status = 422, description = "`MODULE_NOT_ALLOWED`", body = ErrorEnvelope),
    ))]
pub(crate) async fn add_module(
    State(svc): State<Service>,
    p: PathParams,
    StrictJson(req): StrictJson<AddModule>,
) -> Res<Created<TemplateEntry>> {
    let id = template_id(&p)?;
    svc.add_module(id, req.name.clone()).await?;
    Ok(Created(TemplateEntry {
        template_id: id.as_uuid(),
        name: req.name,
    }))
}

#[utoipa::path(get, path = "/api/v1/templates/{template_id}/modules", tag = "templates", operation_id = "list_modules",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    responses(
        (status = 200, description = "Exposed module names in the order added", body = Vec<String>),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn list_modules(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<String>>> {
    Ok(Json(svc.store.list_modules(template_id(&p)?).await?))
}

#[utoipa::path(delete, path = "/api/v1/templates/{template_id}/modules/{name}", tag = "templates", operation_id = "delete_module",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)"), ("name" = String, Path, description = "Module name (trimmed and lowercased)")),
    responses(
        (status = 200, description = "Removed (whether or not it was present)", body = EntryDeleted),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn delete_module(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<EntryDeleted>> {
    let id = template_id(&p)?;
    let name = normalize_module_name(p.get("name")?);
    svc.store
        .remove_module(id, name.clone(), crate::model::Timestamp::now())
        .await?;
    Ok(Json(EntryDeleted {
        status: StatusOk,
        template_id: id.as_uuid(),
        name,
    }))
}

#[utoipa::path(post, path = "/api/v1/templates/{template_id}/libraries", tag = "templates", operation_id = "add_library",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    request_body = AddLibrary,
    responses(
        (status = 201, description = "The stored entry (`id` or `id@version`)", body = TemplateEntry),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
        (status = 422, description = "`LIBRARY_UNKNOWN`", body = ErrorEnvelope),
    ))]
pub(crate) async fn add_library(
    State(svc): State<Service>,
    p: PathParams,
    StrictJson(req): StrictJson<AddLibrary>,
) -> Res<Created<TemplateEntry>> {
    let id = template_id(&p)?;
    let entry = svc.add_library(id, &req.name, req.spec()).await?;
    Ok(Created(TemplateEntry {
        template_id: id.as_uuid(),
        name: entry,
    }))
}

#[utoipa::path(get, path = "/api/v1/templates/{template_id}/libraries", tag = "templates", operation_id = "list_libraries",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)")),
    responses(
        (status = 200, description = "Library entries in load order", body = Vec<String>),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn list_libraries(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<String>>> {
    Ok(Json(svc.store.list_libraries(template_id(&p)?).await?))
}

#[utoipa::path(delete, path = "/api/v1/templates/{template_id}/libraries/{name}", tag = "templates", operation_id = "delete_library",
    params(("template_id" = Uuid, Path, description = "Template id (hyphenated UUID)"), ("name" = String, Path, description = "Library `id` or `id@version`")),
    responses(
        (status = 200, description = "Removed (whether or not it was present)", body = EntryDeleted),
        (status = 404, description = "`TEMPLATE_NOT_FOUND`", body = ErrorEnvelope),
    ))]
pub(crate) async fn delete_library(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<EntryDeleted>> {
    let id = template_id(&p)?;
    let name = p.get("name")?.to_string();
    svc.store
        .remove_library(id, library_id_of(&name), crate::model::Timestamp::now())
        .await?;
    Ok(Json(EntryDeleted {
        status: StatusOk,
        template_id: id.as_uuid(),
        name,
    }))
}
