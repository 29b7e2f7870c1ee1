//! Typed, validated inputs for every §4 request body and query string.
//!
//! Each type decodes every member first (`INVALID_REQUEST`) and validates afterwards
//! (`VALIDATION_ERROR`, first offending field in documented order). Checks that spec §4 places at
//! a later step (paths → 422, startup modes, library syntax) are methods the handler calls there.

mod capability;
mod executions;
mod sessions;
mod settings;
mod templates;

#[allow(
    unused_imports,
    reason = "re-exported for the endpoint handlers to come"
)]
pub(crate) use capability::{AddCapability, CapabilityKind, MAX_EXEC_ALLOW, is_net_target};
#[allow(
    unused_imports,
    reason = "re-exported for the endpoint handlers to come"
)]
pub(crate) use executions::{ListEvents, ListExecutions, ReplRequest, RunFileRequest};
#[allow(
    unused_imports,
    reason = "re-exported for the endpoint handlers to come"
)]
pub(crate) use sessions::{CreateSession, ListSessions, MAX_WORKTREE_PATH_BYTES, SessionStatus};
#[allow(
    unused_imports,
    reason = "re-exported for the endpoint handlers to come"
)]
pub(crate) use settings::{LimitsPatch, ResolverPatch, RuntimePatch, SettingsPatch, limits};
#[allow(
    unused_imports,
    reason = "re-exported for the endpoint handlers to come"
)]
pub(crate) use templates::{
    AddLibrary, AddModule, AddStartupFile, CreateTemplate, LibrarySpec, is_library_version,
    lexical_path, library_id_of, normalize_module_name,
};
