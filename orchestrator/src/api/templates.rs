//! Handlers of `/templates/**` and the catalogs (spec §4.1–§4.7): extract, call the service,
//! map to a DTO.

use axum::extract::State;

use super::convert;
use super::dto::{
    CapabilityDeleted, Created, EntryDeleted, Json, StartupFileDeleted, StatusOk, TemplateDeleted,
    TemplateEntry,
};
use super::error::ApiError;
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

pub(crate) async fn create(
    State(svc): State<Service>,
    StrictJson(req): StrictJson<CreateTemplate>,
) -> Res<Created<super::dto::Template>> {
    let template = svc.create_template(req.name, req.engine).await?;
    Ok(Created(convert::template(template)))
}

pub(crate) async fn list(
    State(svc): State<Service>,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<super::dto::Template>>> {
    let templates = svc.store.list_templates().await?;
    Ok(Json(templates.into_iter().map(convert::template).collect()))
}

pub(crate) async fn get(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<super::dto::TemplateDetail>> {
    let detail = svc.template_detail(template_id(&p)?).await?;
    Ok(Json(convert::template_detail(detail)?))
}

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

pub(crate) async fn get_settings(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<super::dto::Settings>> {
    let settings = svc.store.get_settings(template_id(&p)?).await?;
    Ok(Json(convert::settings(settings)))
}

pub(crate) async fn patch_settings(
    State(svc): State<Service>,
    p: PathParams,
    StrictJson(req): StrictJson<SettingsPatch>,
) -> Res<Json<super::dto::Settings>> {
    let settings = svc.patch_settings(template_id(&p)?, req).await?;
    Ok(Json(convert::settings(settings)))
}

pub(crate) async fn add_capability(
    State(svc): State<Service>,
    p: PathParams,
    StrictJson(req): StrictJson<AddCapability>,
) -> Res<Created<super::dto::Capability>> {
    let cap = svc.add_capability(template_id(&p)?, req).await?;
    Ok(Created(convert::capability(cap)?))
}

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

pub(crate) async fn add_startup_file(
    State(svc): State<Service>,
    p: PathParams,
    StrictJson(req): StrictJson<AddStartupFile>,
) -> Res<Created<super::dto::StartupFile>> {
    let file = svc.add_startup_file(template_id(&p)?, req).await?;
    Ok(Created(convert::startup_file(file)))
}

pub(crate) async fn list_startup_files(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<super::dto::StartupFile>>> {
    let files = svc.store.list_startup_files(template_id(&p)?).await?;
    Ok(Json(files.into_iter().map(convert::startup_file).collect()))
}

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

pub(crate) async fn list_modules(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<String>>> {
    Ok(Json(svc.store.list_modules(template_id(&p)?).await?))
}

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

pub(crate) async fn list_libraries(
    State(svc): State<Service>,
    p: PathParams,
    _q: StrictQuery<NoQuery>,
) -> Res<Json<Vec<String>>> {
    Ok(Json(svc.store.list_libraries(template_id(&p)?).await?))
}

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
