//! Model → DTO conversions (the hand-written bridge between store rows and response bodies).

use super::dto;
use super::error::ApiError;
use crate::model::{
    Capability, Event, Execution, ExecutionDetail, ExecutionStatus, Session, Settings, StartupFile,
    Template, TemplateDetail, Timestamp,
};

fn raw(text: String) -> Result<dto::RawJson, ApiError> {
    dto::raw_json(text)
}

fn raw_value(value: &serde_json::Value) -> Result<dto::RawJson, ApiError> {
    raw(value.to_string())
}

pub(crate) fn template(t: Template) -> dto::Template {
    dto::Template {
        id: t.id.as_uuid(),
        name: t.name,
        engine: t.engine,
        exposed_modules: t.exposed_modules,
        libraries: t.libraries,
        created_at: t.created_at.to_rfc3339(),
        updated_at: t.updated_at.to_rfc3339(),
    }
}

pub(crate) fn settings(s: Settings) -> dto::Settings {
    dto::Settings {
        template_id: s.template_id.as_uuid(),
        updated_at: s.updated_at.to_rfc3339(),
        limits: dto::Limits {
            cpu_ms: s.limits.cpu_ms,
            wall_ms: s.limits.wall_ms,
            mem_mb: s.limits.mem_mb,
            max_events: s.limits.max_events,
            max_output_kb: s.limits.max_output_kb,
        },
        resolver: dto::Resolver {
            roots: s.resolver.roots,
            extensions: s.resolver.extensions,
            allow_absolute_repo_imports: s.resolver.allow_absolute_repo_imports,
        },
        runtime: dto::Runtime {
            esm: s.runtime.esm,
            strict: s.runtime.strict,
            console: s.runtime.console,
        },
    }
}

pub(crate) fn capability(c: Capability) -> Result<dto::Capability, ApiError> {
    Ok(dto::Capability {
        id: c.id.as_uuid(),
        template_id: c.template_id.as_uuid(),
        kind: c.kind.as_str().to_string(),
        name: c.name,
        enabled: c.enabled,
        config: raw_value(&c.config)?,
        created_at: c.created_at.to_rfc3339(),
    })
}

pub(crate) fn startup_file(f: StartupFile) -> dto::StartupFile {
    dto::StartupFile {
        id: f.id.as_uuid(),
        template_id: f.template_id.as_uuid(),
        path: f.path,
        order_index: f.order_index,
        mode: f.mode,
        created_at: f.created_at.to_rfc3339(),
    }
}

pub(crate) fn template_detail(d: TemplateDetail) -> Result<dto::TemplateDetail, ApiError> {
    Ok(dto::TemplateDetail {
        template: template(d.template),
        settings: settings(d.settings),
        capabilities: d
            .capabilities
            .into_iter()
            .map(capability)
            .collect::<Result<_, _>>()?,
        startup_files: d.startup_files.into_iter().map(startup_file).collect(),
    })
}

pub(crate) fn session(s: Session) -> dto::Session {
    dto::Session {
        id: s.id.as_uuid(),
        template_id: s.template_id.as_uuid(),
        workspace_id: s.workspace_id,
        base_commit_oid: s.base_commit_oid,
        worktree_path: s.worktree_path,
        status: s.status.as_str().to_string(),
        engine: s.engine,
        pid: s.pid,
        last_error: s.last_error,
        created_at: s.created_at.to_rfc3339(),
        updated_at: s.updated_at.to_rfc3339(),
        closed_at: s.closed_at.map(Timestamp::to_rfc3339),
    }
}

pub(crate) fn execution(e: Execution) -> Result<dto::Execution, ApiError> {
    let wall_ms = if e.status == ExecutionStatus::Running {
        Timestamp::now().millis_since(e.started_at)
    } else {
        e.metrics.wall_ms
    };
    Ok(dto::Execution {
        id: e.id.as_uuid(),
        session_id: e.session_id.as_uuid(),
        kind: e.kind.as_str().to_string(),
        status: e.status.as_str().to_string(),
        input: e.input,
        path: e.path,
        args: e.args.as_ref().map(raw_value).transpose()?,
        env: e.env.as_ref().map(raw_value).transpose()?,
        result: e.result.map(raw).transpose()?,
        error: e.error.map(|err| dto::ExecutionError {
            code: err.code,
            message: err.message,
            name: err.name,
            stack: err.stack,
        }),
        metrics: dto::Metrics {
            wall_ms,
            cpu_ms: e.metrics.cpu_ms,
            event_count: e.metrics.event_count,
            output_bytes: e.metrics.output_bytes,
        },
        started_at: e.started_at.to_rfc3339(),
        ended_at: e.ended_at.map(Timestamp::to_rfc3339),
    })
}

pub(crate) fn event(e: Event) -> Result<dto::Event, ApiError> {
    Ok(dto::Event {
        execution_id: e.execution_id.as_uuid(),
        seq: e.seq,
        ts: e.ts.to_rfc3339(),
        event_type: e.event_type.as_str().to_string(),
        payload: raw(e.payload)?,
    })
}

pub(crate) fn execution_detail(d: ExecutionDetail) -> Result<dto::ExecutionDetail, ApiError> {
    Ok(dto::ExecutionDetail {
        execution: execution(d.execution)?,
        events: d.events.into_iter().map(event).collect::<Result<_, _>>()?,
    })
}
