//! The CLI client half of `vm-system` (spec §11): the command tree, the commands, and their output.

mod args;
mod commands;
mod error;
mod exec;
mod libs;
mod output;

pub(crate) use args::{
    CompletionsArgs, ExecCommand, GlobalArgs, LibsCommand, OpsCommand, SessionCommand,
    TemplateCommand,
};
pub(crate) use commands::{Ctx, completions, ops, session, template};
pub(crate) use error::{CliError, FailureKind, Outcome, report};
pub(crate) use exec::exec;
pub(crate) use libs::libs;
