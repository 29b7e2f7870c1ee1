//! `libs download` and `libs list` (spec §9): filling and inspecting the library cache from the npm
//! registry, locally and without a daemon.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha512};

use crate::catalog::{self, LibraryInfo};
use crate::cli::args::{LibsCommand, OutputFormat};
use crate::cli::error::{CliError, Outcome};
use crate::cli::output;

/// Each HTTP request of a download has this timeout (spec §9).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest package document or tarball read.
const MAX_DOWNLOAD_BYTES: u64 = 256 * 1024 * 1024;
/// Largest bundle file extracted.
const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// One line of `libs` output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct LibEntry {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) status: LibStatus,
    pub(crate) path: String,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LibStatus {
    Downloaded,
    Cached,
    Failed,
    Missing,
}

impl LibStatus {
    fn as_str(self) -> &'static str {
        match self {
            LibStatus::Downloaded => "downloaded",
            LibStatus::Cached => "cached",
            LibStatus::Failed => "failed",
            LibStatus::Missing => "missing",
        }
    }
}

/// A requested library: the catalog entry and the version wanted.
#[derive(Debug, Clone)]
struct Wanted {
    info: &'static LibraryInfo,
    version: String,
}

pub(crate) fn libs(output: OutputFormat, command: LibsCommand) -> Result<Outcome, CliError> {
    match command {
        LibsCommand::Download {
            libraries,
            library_dir,
            registry,
            force,
        } => {
            let wanted = parse_wanted(&libraries)?;
            let dir = resolve_dir(library_dir)?;
            let registry = registry.trim_end_matches('/').to_string();
            let agent = npm_agent();
            let mut entries = Vec::new();
            for w in &wanted {
                let path = dir.join(file_name(w.info.id, &w.version));
                let status = if path.exists() && !force {
                    LibStatus::Cached
                } else {
                    match download(&agent, &registry, w, &dir, &path) {
                        Ok(()) => LibStatus::Downloaded,
                        Err(err) => {
                            let _ = writeln!(
                                std::io::stderr().lock(),
                                "error: failed to download {}@{}: {err:#}",
                                w.info.id,
                                w.version
                            );
                            LibStatus::Failed
                        }
                    }
                };
                entries.push(entry(w.info.id, &w.version, status, &path));
            }
            print_entries(output, &entries)?;
            if entries.iter().any(|e| e.status == LibStatus::Failed) {
                Err(CliError::Reported)
            } else {
                Ok(Outcome::Success)
            }
        }
        LibsCommand::List { library_dir } => {
            let dir = resolve_dir(library_dir)?;
            print_entries(output, &list(&dir))?;
            Ok(Outcome::Success)
        }
    }
}

/// The catalog entries at their pinned versions, then any other cached versions of catalog ids.
fn list(dir: &Path) -> Vec<LibEntry> {
    let mut entries: Vec<LibEntry> = catalog::LIBRARIES
        .iter()
        .map(|info| {
            let path = dir.join(file_name(info.id, info.version));
            let status = if path.is_file() {
                LibStatus::Cached
            } else {
                LibStatus::Missing
            };
            entry(info.id, info.version, status, &path)
        })
        .collect();
    let mut others = Vec::new();
    if let Ok(read) = std::fs::read_dir(dir) {
        for file in read.flatten() {
            let name = file.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".js")) else {
                continue;
            };
            for info in catalog::LIBRARIES {
                if let Some(version) = stem
                    .strip_prefix(info.id)
                    .and_then(|rest| rest.strip_prefix('-'))
                    && version != info.version
                    && valid_version(version)
                    && file.path().is_file()
                {
                    others.push(entry(info.id, version, LibStatus::Cached, &file.path()));
                }
            }
        }
    }
    others.sort_by(|a, b| (&a.id, &a.version).cmp(&(&b.id, &b.version)));
    entries.extend(others);
    entries
}

fn entry(id: &str, version: &str, status: LibStatus, path: &Path) -> LibEntry {
    LibEntry {
        id: id.to_string(),
        version: version.to_string(),
        status,
        path: path.display().to_string(),
    }
}

fn print_entries(output: OutputFormat, entries: &[LibEntry]) -> Result<(), CliError> {
    let text = match output {
        OutputFormat::Json => {
            let json = serde_json::to_string(entries).map_err(anyhow::Error::new)?;
            output::json_line(&json)
        }
        OutputFormat::Table => {
            let items: Vec<Value> = entries
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "id": e.id, "version": e.version, "status": e.status.as_str(), "path": e.path,
                    })
                })
                .collect();
            output::table(&output::LIBS, &Value::Array(items))
        }
    };
    output::emit(&text)?;
    Ok(())
}

/// `<id>-<version>.js`, the file the daemon loads (spec §9).
fn file_name(id: &str, version: &str) -> String {
    format!("{id}-{version}.js")
}

fn resolve_dir(dir: Option<PathBuf>) -> Result<PathBuf, CliError> {
    let dir = dir.unwrap_or_else(crate::config::default_library_dir);
    std::path::absolute(&dir)
        .map_err(|err| CliError::Usage(format!("invalid --library-dir {}: {err}", dir.display())))
}

/// `ID[@VERSION]` arguments, or every catalog entry at its pinned version.
fn parse_wanted(args: &[String]) -> Result<Vec<Wanted>, CliError> {
    if args.is_empty() {
        return Ok(catalog::LIBRARIES
            .iter()
            .map(|info| Wanted {
                info,
                version: info.version.to_string(),
            })
            .collect());
    }
    let mut wanted: Vec<Wanted> = Vec::new();
    for arg in args {
        let (id, version) = match arg.split_once('@') {
            Some((id, version)) => (id, Some(version.trim())),
            None => (arg.as_str(), None),
        };
        let id = id.trim().to_lowercase();
        let info = catalog::library(&id).ok_or_else(|| {
            let known: Vec<_> = catalog::LIBRARIES.iter().map(|l| l.id).collect();
            CliError::Usage(format!(
                "unknown library {arg:?} (the catalog has {})",
                known.join(", ")
            ))
        })?;
        let version = match version {
            Some(v) if valid_version(v) => v.to_string(),
            Some(v) => {
                return Err(CliError::Usage(format!(
                    "invalid version {v:?} in {arg:?} (expected MAJOR.MINOR.PATCH[-PRERELEASE])"
                )));
            }
            None => info.version.to_string(),
        };
        if !wanted
            .iter()
            .any(|w| w.info.id == info.id && w.version == version)
        {
            wanted.push(Wanted { info, version });
        }
    }
    Ok(wanted)
}

/// `^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$` (spec §4.7).
fn valid_version(version: &str) -> bool {
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && pre.is_none_or(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
}

/// The agent for the registry: system trust store, environment proxies, 30 s per request.
fn npm_agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .tls_config(tls)
        .build()
        .new_agent()
}

/// GET `url` and return the body, failing on a non-2xx status.
fn fetch(agent: &ureq::Agent, url: &str) -> anyhow::Result<Vec<u8>> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("failed to fetch {url}"))?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        bail!("failed to fetch {url}: HTTP {status}");
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .read_to_vec()
        .with_context(|| format!("failed to read {url}"))
}

/// Steps 1–3 of spec §9 for one entry: metadata, verified tarball, bundle written atomically.
fn download(
    agent: &ureq::Agent,
    registry: &str,
    wanted: &Wanted,
    dir: &Path,
    path: &Path,
) -> anyhow::Result<()> {
    let meta_url = format!(
        "{registry}/{}/{}",
        crate::client::seg(wanted.info.package),
        crate::client::seg(&wanted.version)
    );
    let meta: Value = serde_json::from_slice(&fetch(agent, &meta_url)?)
        .with_context(|| format!("failed to parse the package document of {meta_url}"))?;
    let tarball_url = meta["dist"]["tarball"]
        .as_str()
        .ok_or_else(|| anyhow!("the package document has no dist.tarball"))?;
    let expected = sha512_integrity(meta["dist"]["integrity"].as_str().unwrap_or(""))
        .ok_or_else(|| anyhow!("the package document has no sha512 dist.integrity"))?;
    let tarball = fetch(agent, tarball_url)?;
    let actual = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&tarball));
    if actual != expected {
        bail!(
            "integrity mismatch for {tarball_url}: expected sha512-{expected}, got sha512-{actual}"
        );
    }
    let bundle = extract(&tarball, wanted.info.bundle)?;
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let tmp = path.with_file_name(format!(
        "{}.tmp",
        file_name(wanted.info.id, &wanted.version)
    ));
    let written = std::fs::write(&tmp, &bundle)
        .with_context(|| format!("failed to write {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("failed to rename {} into place", tmp.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The base64 digest of the first `sha512-` entry of an SRI string.
fn sha512_integrity(sri: &str) -> Option<String> {
    sri.split_whitespace()
        .find_map(|token| token.strip_prefix("sha512-"))
        .map(|digest| digest.split('?').next().unwrap_or(digest).to_string())
        .filter(|digest| !digest.is_empty())
}

/// Reads `package/<bundle>` out of a `.tgz`.
fn extract(tarball: &[u8], bundle: &str) -> anyhow::Result<Vec<u8>> {
    let wanted = format!("package/{bundle}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let entries = archive.entries().context("failed to read the tarball")?;
    for entry in entries {
        let entry = entry.context("failed to read the tarball")?;
        let name = entry
            .path()
            .context("failed to read the tarball")?
            .to_string_lossy()
            .into_owned();
        if name.trim_start_matches("./") == wanted && entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            entry
                .take(MAX_BUNDLE_BYTES + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("failed to extract {wanted}"))?;
            if bytes.len() as u64 > MAX_BUNDLE_BYTES {
                bail!("{wanted} is larger than {MAX_BUNDLE_BYTES} bytes");
            }
            return Ok(bytes);
        }
    }
    bail!("the tarball has no {wanted}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_api_pattern() {
        for ok in ["1.11.10", "0.0.1", "1.2.3-beta.1", "1.2.3-rc-1"] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in [
            "1.2",
            "1.2.3.4",
            "a.b.c",
            "1.2.3-",
            "../1.2.3",
            "1.2.3-x/y",
            "",
        ] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn integrity_picks_the_sha512_entry() {
        assert_eq!(
            sha512_integrity("sha1-abc sha512-xyz=="),
            Some("xyz==".into())
        );
        assert_eq!(sha512_integrity("sha512-abc?opt"), Some("abc".into()));
        assert_eq!(sha512_integrity("sha1-abc"), None);
        assert_eq!(sha512_integrity(""), None);
    }

    #[test]
    fn wanted_entries_default_to_the_catalog() {
        let all = parse_wanted(&[]).unwrap();
        assert_eq!(all.len(), catalog::LIBRARIES.len());
        let some =
            parse_wanted(&["Lodash".into(), "dayjs@1.11.9".into(), "lodash".into()]).unwrap();
        let got: Vec<_> = some
            .iter()
            .map(|w| (w.info.id, w.version.as_str()))
            .collect();
        assert_eq!(got, vec![("lodash", "4.17.21"), ("dayjs", "1.11.9")]);
        assert!(matches!(
            parse_wanted(&["jquery".into()]),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            parse_wanted(&["dayjs@../x".into()]),
            Err(CliError::Usage(_))
        ));
    }
}
