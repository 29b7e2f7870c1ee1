//! Command-line arguments of `serve` (clap) and their validation into a `ServeConfig`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::DaemonError;

/// `vm-system serve` flags (spec §10.1).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on, host:port; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3210")]
    pub(crate) listen: String,
    /// SQLite database file, created with its parent directories
    /// [default: $XDG_DATA_HOME/vm-system/vm-system.db].
    #[arg(long, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,
    /// Library cache directory [default: $XDG_DATA_HOME/vm-system/libraries].
    #[arg(long, value_name = "DIR")]
    pub(crate) library_dir: Option<PathBuf>,
    /// Worker program [default: vm-system-worker next to this executable].
    #[arg(long, value_name = "PATH")]
    pub(crate) worker_bin: Option<PathBuf>,
    /// Pre-started idle workers, 0-64 (0 disables the pool).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=64))]
    pub(crate) pool_size: u8,
    /// File holding the bearer token every API request must carry.
    #[arg(long, value_name = "FILE")]
    pub(crate) auth_token_file: Option<PathBuf>,
}

/// Validated daemon configuration.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) db: PathBuf,
    pub(crate) library_dir: PathBuf,
    pub(crate) worker_bin: PathBuf,
    pub(crate) pool_size: usize,
    pub(crate) token: Option<String>,
}

/// `$XDG_DATA_HOME/vm-system`, or `$HOME/.local/share/vm-system` (spec §10.1).
pub(crate) fn data_dir() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("vm-system"),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".local/share/vm-system")
        }
    }
}

/// `path` made absolute against the working directory (lexically; as it is if that fails).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// The default library directory (shared by `serve` and the `libs` commands).
pub(crate) fn default_library_dir() -> PathBuf {
    data_dir().join("libraries")
}

/// `--listen host:port`: an IP address, or a host name resolved once, here, to the first address
/// it names (`localhost:0`); the daemon binds that address.
/// (An address literal is taken as it is, without a lookup.)
fn resolve_listen(text: &str) -> Result<SocketAddr, DaemonError> {
    std::net::ToSocketAddrs::to_socket_addrs(text)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| DaemonError::Listen(text.to_string()))
}

impl ServeArgs {
    /// Checks the flags and reads the token file (spec §10.2 step 1).
    pub(crate) fn validate(self) -> Result<ServeConfig, DaemonError> {
        let listen = resolve_listen(&self.listen)?;
        let token = match &self.auth_token_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| DaemonError::TokenFile {
                        path: path.clone(),
                        source,
                    })?;
                let token = text.trim().to_string();
                if token.is_empty() {
                    return Err(DaemonError::BlankToken(path.clone()));
                }
                Some(token)
            }
            None => None,
        };
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(DaemonError::NotLoopback(listen.to_string()));
        }
        let worker_bin = match self.worker_bin {
            Some(path) => path,
            None => std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join("vm-system-worker")))
                .unwrap_or_else(|| PathBuf::from("vm-system-worker")),
        };
        Ok(ServeConfig {
            listen,
            db: self.db.unwrap_or_else(|| data_dir().join("vm-system.db")),
            // Absolute, so that `expected_path` in LIBRARY_NOT_CACHED is (spec §9).
            library_dir: absolute(self.library_dir.unwrap_or_else(default_library_dir)),
            worker_bin,
            pool_size: usize::from(self.pool_size),
            token,
        })
    }
}
