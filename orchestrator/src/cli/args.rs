//! The client command tree of spec §11 as clap derive types: global flags and every subcommand.

use std::path::PathBuf;

use clap::{ArgAction, ArgGroup, Args, Subcommand, ValueEnum};

/// Flags every client command understands; they may appear anywhere on the command line.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Base URL of the daemon [env: VM_SYSTEM_SERVER_URL] [default: http://127.0.0.1:3210]
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) server_url: Option<String>,
    /// Bearer token sent with every request (surrounding whitespace is ignored)
    /// [env: VM_SYSTEM_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// Output format: aligned tables and transcripts, or the API's JSON on one line.
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
}

/// The daemon's URL when neither `--server-url` nor `VM_SYSTEM_SERVER_URL` names one.
const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:3210";

impl GlobalArgs {
    /// The daemon URL and token a client command uses: the flag, else the environment variable,
    /// else the default (none for the token). A variable that is blank counts as unset (as for
    /// `XDG_DATA_HOME`). The variables are read only here, so commands that run no client
    /// (`serve`, `libs`) never fail on them. A malformed value is a usage error naming its source.
    pub(crate) fn connection(&self) -> Result<(String, Option<String>), String> {
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        let checked = |source: &str, text: &str, check: fn(&str) -> Result<String, String>| {
            check(text).map_err(|why| format!("invalid value '{text}' for {source}: {why}"))
        };
        let server_url = match (&self.server_url, env("VM_SYSTEM_SERVER_URL")) {
            (Some(flag), _) => checked("'--server-url <URL>'", flag, server_url)?,
            (None, Some(var)) => checked("VM_SYSTEM_SERVER_URL", &var, server_url)?,
            (None, None) => DEFAULT_SERVER_URL.to_string(),
        };
        let token = match (&self.token, env("VM_SYSTEM_TOKEN")) {
            (Some(flag), _) => Some(checked("'--token <TOKEN>'", flag, token)?),
            // The value is a secret: not repeated in the message.
            (None, Some(var)) => {
                Some(token(&var).map_err(|why| format!("invalid VM_SYSTEM_TOKEN: {why}"))?)
            }
            (None, None) => None,
        };
        Ok((server_url, token))
    }
}

/// `--server-url`: an `http://` or `https://` URL with a host, so that a mistyped one is a usage
/// error rather than a daemon that cannot be reached.
fn server_url(text: &str) -> Result<String, String> {
    let uri: ureq::http::Uri = text
        .parse()
        .map_err(|err| format!("not a URL ({err}); expected e.g. http://127.0.0.1:3210"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("expected an http:// or https:// URL, e.g. http://127.0.0.1:3210".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if uri.path().trim_end_matches('/').ends_with("/api/v1") {
        return Err("give the daemon's base URL, without /api/v1".into());
    }
    if uri.query().is_some() {
        return Err("the URL may not have a query".into());
    }
    Ok(text.to_string())
}

/// `--token`: trimmed like the daemon's token file (spec §10.5); what is left must fit in an HTTP
/// header.
fn token(text: &str) -> Result<String, String> {
    let token = text.trim();
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    if !token.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err("the token may only hold printable ASCII characters".into());
    }
    Ok(token.to_string())
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

/// `vm-system template …`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum TemplateCommand {
    /// Create a template with default settings.
    ///
    /// Example: vm-system template create --name analytics
    Create {
        /// Unique template name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Engine; must be the one this build provides.
        #[arg(long, value_name = "ENGINE")]
        engine: Option<String>,
    },
    /// List templates, newest first.
    ///
    /// Example: vm-system template list --output json
    List,
    /// Show a template with its settings, capabilities and startup files.
    ///
    /// Example: vm-system template get 6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10
    Get {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
    },
    /// Delete a template that no live session uses.
    ///
    /// Example: vm-system template delete 6f1d8c1e-2b7a-4c51-9a51-3f3b1a2c9d10
    Delete {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
    },
    /// Read or change a template's limits and runtime settings.
    ///
    /// Example: vm-system template settings set TEMPLATE_ID --wall-ms 60000
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Add a capability (fs, env, module, global, net) to a template.
    ///
    /// Example: vm-system template add-capability TEMPLATE_ID --kind fs --name worktree --config '{"write":true}'
    AddCapability {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
        /// Capability kind: module, global, fs, net or env.
        #[arg(long, value_name = "KIND")]
        kind: String,
        /// Capability name (meaning depends on the kind).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Configuration, a JSON object.
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
        /// Whether the capability grants anything [default: true].
        #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
        enabled: Option<bool>,
    },
    /// List a template's capabilities, oldest first.
    ///
    /// Example: vm-system template list-capabilities TEMPLATE_ID
    ListCapabilities {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
    },
    /// Remove a capability from a template.
    ///
    /// Example: vm-system template remove-capability TEMPLATE_ID CAPABILITY_ID
    RemoveCapability {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
        /// Capability id.
        #[arg(value_name = "CAPABILITY_ID")]
        capability_id: String,
    },
    /// Add a startup file, run in every new or restarted session.
    ///
    /// Example: vm-system template add-startup TEMPLATE_ID --path runtime/init.js --order 10
    AddStartup {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
        /// Path relative to the session worktree.
        #[arg(long, value_name = "PATH")]
        path: String,
        /// Run order, ascending.
        #[arg(
            long,
            value_name = "N",
            default_value_t = 0,
            allow_negative_numbers = true
        )]
        order: i64,
        /// Evaluation mode; only eval.
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
    },
    /// List a template's startup files in run order.
    ///
    /// Example: vm-system template list-startup TEMPLATE_ID
    ListStartup {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
    },
    /// Remove a startup file from a template.
    ///
    /// Example: vm-system template remove-startup TEMPLATE_ID STARTUP_FILE_ID
    RemoveStartup {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
        /// Startup file id.
        #[arg(value_name = "STARTUP_FILE_ID")]
        startup_file_id: String,
    },
    /// Expose a native module (fs, exec, database) to a template's sessions.
    ///
    /// Example: vm-system template add-module TEMPLATE_ID --name fs
    AddModule(TemplateName),
    /// Stop exposing a native module.
    ///
    /// Example: vm-system template remove-module TEMPLATE_ID --name fs
    RemoveModule(TemplateName),
    /// List a template's native modules in the order added.
    ///
    /// Example: vm-system template list-modules TEMPLATE_ID
    ListModules {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
    },
    /// Load a catalog library (id or id@version) in a template's sessions.
    ///
    /// Example: vm-system template add-library TEMPLATE_ID --name lodash
    AddLibrary(TemplateLibrary),
    /// Remove a library from a template.
    ///
    /// Example: vm-system template remove-library TEMPLATE_ID --name lodash
    RemoveLibrary(TemplateLibrary),
    /// List a template's libraries in load order.
    ///
    /// Example: vm-system template list-libraries TEMPLATE_ID
    ListLibraries {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
    },
    /// List the native modules a template may expose.
    ///
    /// Example: vm-system template list-available-modules
    ListAvailableModules,
    /// List the catalog libraries and whether the daemon has them cached.
    ///
    /// Example: vm-system template list-available-libraries
    ListAvailableLibraries,
}

/// `TEMPLATE_ID --name NAME` (modules).
#[derive(Debug, Clone, Args)]
pub(crate) struct TemplateName {
    /// Template id.
    #[arg(value_name = "TEMPLATE_ID")]
    pub(crate) template_id: String,
    /// Module name.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: String,
}

/// `TEMPLATE_ID --name ID[@VERSION]` (libraries).
#[derive(Debug, Clone, Args)]
pub(crate) struct TemplateLibrary {
    /// Template id.
    #[arg(value_name = "TEMPLATE_ID")]
    pub(crate) template_id: String,
    /// Library id, optionally with @version.
    #[arg(long, value_name = "ID[@VERSION]")]
    pub(crate) name: String,
}

/// `vm-system template settings …`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum SettingsCommand {
    /// Show a template's settings.
    ///
    /// Example: vm-system template settings get TEMPLATE_ID
    Get {
        /// Template id.
        #[arg(value_name = "TEMPLATE_ID")]
        template_id: String,
    },
    /// Change a template's settings; flags override the same fields of --json.
    ///
    /// Example: vm-system template settings set TEMPLATE_ID --cpu-ms 1000 --strict true
    Set(SettingsSet),
}

/// `template settings set`: at least one change is required.
#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("change")
        .required(true)
        .multiple(true)
        .args(["cpu_ms", "wall_ms", "mem_mb", "max_events", "max_output_kb", "strict", "console", "esm", "json"])
))]
pub(crate) struct SettingsSet {
    /// Template id.
    #[arg(value_name = "TEMPLATE_ID")]
    pub(crate) template_id: String,
    /// limits.cpu_ms: CPU time per execution.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) cpu_ms: Option<i64>,
    /// limits.wall_ms: elapsed time per execution.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) wall_ms: Option<i64>,
    /// limits.mem_mb: engine memory of the session.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) mem_mb: Option<i64>,
    /// limits.max_events: events stored per execution.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) max_events: Option<i64>,
    /// limits.max_output_kb: payload bytes per execution, in KiB.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) max_output_kb: Option<i64>,
    /// runtime.strict: evaluate code as strict-mode scripts.
    #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
    pub(crate) strict: Option<bool>,
    /// runtime.console: record console output.
    #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
    pub(crate) console: Option<bool>,
    /// runtime.esm: reserved.
    #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
    pub(crate) esm: Option<bool>,
    /// A settings patch, a JSON object such as '{"limits":{"wall_ms":1000}}'.
    #[arg(long, value_name = "PATCH")]
    pub(crate) json: Option<String>,
}

/// `vm-system session …`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum SessionCommand {
    /// Start a session of a template on a worktree directory.
    ///
    /// Example: vm-system session create --template-id TEMPLATE_ID --workspace-id ws-1 --base-commit HEAD --worktree-path .
    Create {
        /// Template to start the session from.
        #[arg(long, value_name = "ID")]
        template_id: String,
        /// Opaque workspace label.
        #[arg(long, value_name = "W")]
        workspace_id: String,
        /// Opaque commit id the worktree is based on.
        #[arg(long, value_name = "OID")]
        base_commit: String,
        /// Worktree directory; a relative path is made absolute against the current directory.
        #[arg(long, value_name = "PATH")]
        worktree_path: PathBuf,
    },
    /// List sessions, newest first.
    ///
    /// Example: vm-system session list --status ready
    List {
        /// Only sessions in this status: starting, ready, crashed or closed.
        #[arg(long, value_name = "S")]
        status: Option<String>,
    },
    /// Show a session.
    ///
    /// Example: vm-system session get SESSION_ID
    Get {
        /// Session id.
        #[arg(value_name = "SESSION_ID")]
        session_id: String,
    },
    /// Close a session and stop its worker.
    ///
    /// Example: vm-system session close SESSION_ID
    Close {
        /// Session id.
        #[arg(value_name = "SESSION_ID")]
        session_id: String,
    },
    /// Restart a ready or crashed session with the template's current settings.
    ///
    /// Example: vm-system session restart SESSION_ID
    Restart {
        /// Session id.
        #[arg(value_name = "SESSION_ID")]
        session_id: String,
    },
}

/// `vm-system exec …`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum ExecCommand {
    /// Run JavaScript in a session and print its transcript ("-" reads the code from stdin).
    ///
    /// Example: vm-system exec repl SESSION_ID "console.log('hi'); 40 + 2"
    Repl {
        /// Session id.
        #[arg(value_name = "SESSION_ID")]
        session_id: String,
        /// The code, or - to read it from stdin.
        #[arg(value_name = "CODE", allow_hyphen_values = true)]
        code: String,
    },
    /// Run a file of the session's worktree and print its transcript.
    ///
    /// Example: vm-system exec run-file SESSION_ID scripts/report.js --args '{"day":3}'
    RunFile {
        /// Session id.
        #[arg(value_name = "SESSION_ID")]
        session_id: String,
        /// Path relative to the worktree.
        #[arg(value_name = "PATH")]
        path: String,
        /// Arguments exposed as __ARGS__, a JSON object.
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
        /// process.env overlay for this run, a JSON object of strings.
        #[arg(long, value_name = "JSON")]
        env: Option<String>,
    },
    /// List a session's executions, newest first.
    ///
    /// Example: vm-system exec list SESSION_ID --limit 10
    List {
        /// Session id.
        #[arg(value_name = "SESSION_ID")]
        session_id: String,
        /// At most this many executions (1-1000, default 50).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        limit: Option<i64>,
    },
    /// Show an execution and its transcript.
    ///
    /// Example: vm-system exec get EXECUTION_ID
    Get {
        /// Execution id.
        #[arg(value_name = "EXECUTION_ID")]
        execution_id: String,
    },
    /// Cancel a running execution and print its final transcript.
    ///
    /// Example: vm-system exec cancel EXECUTION_ID
    Cancel {
        /// Execution id.
        #[arg(value_name = "EXECUTION_ID")]
        execution_id: String,
    },
    /// List an execution's events, or follow them as they happen.
    ///
    /// Example: vm-system exec events EXECUTION_ID --follow
    Events {
        /// Execution id.
        #[arg(value_name = "EXECUTION_ID")]
        execution_id: String,
        /// Only events after this sequence number.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        after_seq: Option<i64>,
        /// At most this many events (1-10000, default 1000).
        #[arg(
            long,
            value_name = "N",
            allow_negative_numbers = true,
            conflicts_with = "follow"
        )]
        limit: Option<i64>,
        /// Stream events as they arrive until the execution ends.
        #[arg(long)]
        follow: bool,
    },
}

/// `vm-system ops …`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum OpsCommand {
    /// Check that the daemon answers, and show its version and engine.
    ///
    /// Example: vm-system ops health
    Health,
    /// Show active sessions, their workers and the warm pool.
    ///
    /// Example: vm-system ops runtime-summary --output json
    RuntimeSummary,
}

/// `vm-system libs …`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum LibsCommand {
    /// Download catalog libraries from the npm registry into the library directory (no daemon needed).
    ///
    /// Example: vm-system libs download lodash dayjs@1.11.10
    Download {
        /// Libraries to fetch [default: every catalog entry at its pinned version].
        #[arg(value_name = "ID[@VERSION]")]
        libraries: Vec<String>,
        /// Library directory [default: $XDG_DATA_HOME/vm-system/libraries].
        #[arg(long, value_name = "DIR")]
        library_dir: Option<PathBuf>,
        /// npm registry base URL.
        #[arg(long, value_name = "URL", default_value = "https://registry.npmjs.org")]
        registry: String,
        /// Download again even if the file exists.
        #[arg(long)]
        force: bool,
    },
    /// List the catalog libraries and whether they are in the library directory.
    ///
    /// Example: vm-system libs list --library-dir ./libraries
    List {
        /// Library directory [default: $XDG_DATA_HOME/vm-system/libraries].
        #[arg(long, value_name = "DIR")]
        library_dir: Option<PathBuf>,
    },
}

/// `vm-system completions SHELL`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: Shell,
}

/// The shells `completions` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}
