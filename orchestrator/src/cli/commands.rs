//! The `template`, `session` and `ops` commands: one API call each, printed per spec §11.

use serde_json::{Map, Value};

use crate::cli::args::{
    GlobalArgs, OpsCommand, OutputFormat, SessionCommand, SettingsCommand, SettingsSet, Shell,
    TemplateCommand,
};
use crate::cli::error::{CliError, Outcome};
use crate::cli::output::{self, Columns};
use crate::client::{self, Body, Client, ClientError};

/// What a client command needs: the client and the output format.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) output: OutputFormat,
}

/// How a successful answer is shown in table mode.
pub(crate) enum Show<'a> {
    Fields,
    Table(&'a Columns),
    Names,
}

impl Ctx {
    /// The client of `global`'s connection flags; a malformed one is a usage error.
    pub(crate) fn new(global: &GlobalArgs) -> Result<Ctx, CliError> {
        let (server_url, token) = global.connection().map_err(CliError::Usage)?;
        Ok(Ctx {
            client: Client::new(&server_url, token),
            output: global.output,
        })
    }

    /// Prints a successful answer: the body in json mode, `show` in table mode.
    pub(crate) fn print(&self, body: &Body, show: Show<'_>) -> Result<Outcome, CliError> {
        let text = match (self.output, show) {
            (OutputFormat::Json, _) => output::json_line(&body.raw),
            (OutputFormat::Table, Show::Fields) => output::fields(&body.value),
            (OutputFormat::Table, Show::Table(columns)) => output::table(columns, &body.value),
            (OutputFormat::Table, Show::Names) => output::names(&body.value),
        };
        output::emit(&text)?;
        Ok(Outcome::Success)
    }

    /// Prints a successful answer, with `line` instead in table mode.
    fn print_or(&self, body: &Body, line: String) -> Result<Outcome, CliError> {
        match self.output {
            OutputFormat::Json => output::emit(&output::json_line(&body.raw))?,
            OutputFormat::Table => output::emit(&format!("{line}\n"))?,
        }
        Ok(Outcome::Success)
    }
}

/// Parses a JSON argument that must be an object, or fails with a usage error naming `flag`. It is
/// read as strictly as the API reads bodies (spec §1): a duplicate key is an error, not the last
/// one winning.
pub(crate) fn json_object(flag: &str, text: &str) -> Result<Value, CliError> {
    if let Err(err) = crate::api::json::parse(text.as_bytes()) {
        return Err(CliError::Usage(format!("{flag} is not valid JSON: {err}")));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(CliError::Usage(format!("{flag} must be a JSON object"))),
        Err(err) => Err(CliError::Usage(format!("{flag} is not valid JSON: {err}"))),
    }
}

pub(crate) fn template(ctx: &Ctx, command: TemplateCommand) -> Result<Outcome, CliError> {
    let c = &ctx.client;
    match command {
        TemplateCommand::Create { name, engine } => {
            let body = c.create_template(&client::CreateTemplate { name, engine })?;
            let line = format!(
                "Created template: {} (ID: {})",
                output::cell(&body.value["name"]),
                output::cell(&body.value["id"])
            );
            ctx.print_or(&body, line)
        }
        TemplateCommand::List => ctx.print(&c.list_templates()?, Show::Table(&output::TEMPLATES)),
        TemplateCommand::Get { template_id } => {
            ctx.print(&c.get_template(&template_id)?, Show::Fields)
        }
        TemplateCommand::Delete { template_id } => {
            ctx.print(&c.delete_template(&template_id)?, Show::Fields)
        }
        TemplateCommand::Settings(SettingsCommand::Get { template_id }) => {
            ctx.print(&c.get_settings(&template_id)?, Show::Fields)
        }
        TemplateCommand::Settings(SettingsCommand::Set(set)) => {
            let patch = settings_patch(&set)?;
            ctx.print(&c.patch_settings(&set.template_id, &patch)?, Show::Fields)
        }
        TemplateCommand::AddCapability {
            template_id,
            kind,
            name,
            config,
            enabled,
        } => {
            let config = config
                .map(|text| json_object("--config", &text))
                .transpose()?;
            let req = client::AddCapability {
                kind,
                name,
                enabled,
                config,
            };
            ctx.print(&c.add_capability(&template_id, &req)?, Show::Fields)
        }
        TemplateCommand::ListCapabilities { template_id } => ctx.print(
            &c.list_capabilities(&template_id)?,
            Show::Table(&output::CAPABILITIES),
        ),
        TemplateCommand::RemoveCapability {
            template_id,
            capability_id,
        } => ctx.print(
            &c.remove_capability(&template_id, &capability_id)?,
            Show::Fields,
        ),
        TemplateCommand::AddStartup {
            template_id,
            path,
            order,
            mode,
        } => {
            let req = client::AddStartupFile {
                path,
                order_index: order,
                mode,
            };
            ctx.print(&c.add_startup_file(&template_id, &req)?, Show::Fields)
        }
        TemplateCommand::ListStartup { template_id } => ctx.print(
            &c.list_startup_files(&template_id)?,
            Show::Table(&output::STARTUP_FILES),
        ),
        TemplateCommand::RemoveStartup {
            template_id,
            startup_file_id,
        } => ctx.print(
            &c.remove_startup_file(&template_id, &startup_file_id)?,
            Show::Fields,
        ),
        TemplateCommand::AddModule(a) => {
            ctx.print(&c.add_module(&a.template_id, &a.name)?, Show::Fields)
        }
        TemplateCommand::RemoveModule(a) => {
            ctx.print(&c.remove_module(&a.template_id, &a.name)?, Show::Fields)
        }
        TemplateCommand::ListModules { template_id } => {
            ctx.print(&c.list_modules(&template_id)?, Show::Names)
        }
        TemplateCommand::AddLibrary(a) => {
            ctx.print(&c.add_library(&a.template_id, &a.name)?, Show::Fields)
        }
        TemplateCommand::RemoveLibrary(a) => {
            ctx.print(&c.remove_library(&a.template_id, &a.name)?, Show::Fields)
        }
        TemplateCommand::ListLibraries { template_id } => {
            ctx.print(&c.list_libraries(&template_id)?, Show::Names)
        }
        TemplateCommand::ListAvailableModules => {
            ctx.print(&c.catalog_modules()?, Show::Table(&output::MODULE_CATALOG))
        }
        TemplateCommand::ListAvailableLibraries => ctx.print(
            &c.catalog_libraries()?,
            Show::Table(&output::LIBRARY_CATALOG),
        ),
    }
}

/// The PATCH body of `template settings set`: `--json` first, then each flag over it.
fn settings_patch(set: &SettingsSet) -> Result<Value, CliError> {
    let mut patch = match &set.json {
        Some(text) => json_object("--json", text)?,
        None => Value::Object(Map::new()),
    };
    let limits = [
        ("cpu_ms", set.cpu_ms),
        ("wall_ms", set.wall_ms),
        ("mem_mb", set.mem_mb),
        ("max_events", set.max_events),
        ("max_output_kb", set.max_output_kb),
    ];
    for (key, value) in limits {
        if let Some(value) = value {
            set_member(&mut patch, "limits", key, Value::from(value));
        }
    }
    let runtime = [
        ("strict", set.strict),
        ("console", set.console),
        ("esm", set.esm),
    ];
    for (key, value) in runtime {
        if let Some(value) = value {
            set_member(&mut patch, "runtime", key, Value::Bool(value));
        }
    }
    Ok(patch)
}

/// Sets `patch[section][key]`, making `patch[section]` an object if it is not one.
fn set_member(patch: &mut Value, section: &str, key: &str, value: Value) {
    let Value::Object(root) = patch else {
        return;
    };
    let entry = root
        .entry(section.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(members) = entry {
        members.insert(key.to_string(), value);
    }
}

pub(crate) fn session(ctx: &Ctx, command: SessionCommand) -> Result<Outcome, CliError> {
    let c = &ctx.client;
    match command {
        SessionCommand::Create {
            template_id,
            workspace_id,
            base_commit,
            worktree_path,
        } => {
            let absolute = std::path::absolute(&worktree_path)
                .map_err(|err| CliError::Usage(format!("invalid --worktree-path: {err}")))?;
            let worktree_path = absolute
                .to_str()
                .ok_or_else(|| CliError::Usage("--worktree-path is not valid UTF-8".to_string()))?
                .to_string();
            let req = client::CreateSession {
                template_id,
                workspace_id,
                base_commit_oid: base_commit,
                worktree_path,
            };
            let body = c.create_session(&req)?;
            let line = format!("Created session: {}", output::cell(&body.value["id"]));
            ctx.print_or(&body, line)
        }
        SessionCommand::List { status } => ctx.print(
            &c.list_sessions(status.as_deref())?,
            Show::Table(&output::SESSIONS),
        ),
        SessionCommand::Get { session_id } => ctx.print(&c.get_session(&session_id)?, Show::Fields),
        SessionCommand::Close { session_id } => {
            ctx.print(&c.close_session(&session_id)?, Show::Fields)
        }
        SessionCommand::Restart { session_id } => {
            ctx.print(&c.restart_session(&session_id)?, Show::Fields)
        }
    }
}

pub(crate) fn ops(ctx: &Ctx, command: OpsCommand) -> Result<Outcome, CliError> {
    let body: Result<Body, ClientError> = match command {
        OpsCommand::Health => ctx.client.health(),
        OpsCommand::RuntimeSummary => ctx.client.runtime_summary(),
    };
    ctx.print(&body?, Show::Fields)
}

/// `completions SHELL`: the completion script for the whole command tree.
pub(crate) fn completions(shell: Shell, command: &mut clap::Command) -> Result<Outcome, CliError> {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(generator, command, "vm-system", &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if shell == Shell::Bash {
        // clap_complete names the subcommands' `case` arms `vm__subcmd__system__…` for a binary
        // whose name has a hyphen, while the loop that picks the arm builds `vm__system__…`, so
        // nothing past the first word completed (clap-rs/clap#6421).
        script = script.replace("vm__subcmd__system", "vm__system");
    }
    output::emit(&script)?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(json: Option<&str>, cpu_ms: Option<i64>, strict: Option<bool>) -> SettingsSet {
        SettingsSet {
            template_id: "t".into(),
            cpu_ms,
            wall_ms: None,
            mem_mb: None,
            max_events: None,
            max_output_kb: None,
            strict,
            console: None,
            esm: None,
            json: json.map(str::to_string),
        }
    }

    #[test]
    fn flags_override_the_json_patch() {
        let patch = settings_patch(&set(
            Some(r#"{"limits":{"cpu_ms":1,"wall_ms":2},"resolver":{"roots":[]}}"#),
            Some(7),
            Some(true),
        ))
        .unwrap();
        assert_eq!(
            patch,
            json!({"limits": {"cpu_ms": 7, "wall_ms": 2}, "resolver": {"roots": []},
                   "runtime": {"strict": true}})
        );
        assert!(matches!(
            settings_patch(&set(Some("[1]"), None, None)),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            settings_patch(&set(Some("{"), None, None)),
            Err(CliError::Usage(_))
        ));
    }
}
