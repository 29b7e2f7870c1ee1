//! Repository hygiene checks that are cheap enough to run with every test run.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "node_modules" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc_line() {
    let root = workspace_root();
    let mut files = Vec::new();
    for member in ["protocol", "worker", "orchestrator", "tests"] {
        rust_files(&root.join(member), &mut files);
    }
    assert!(files.len() > 10);
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! line: {missing:?}"
    );
}

#[test]
fn only_the_spawn_module_starts_processes() {
    let root = workspace_root();
    let mut files = Vec::new();
    for member in ["protocol", "worker", "orchestrator"] {
        rust_files(&root.join(member), &mut files);
    }
    let allowed = [
        "orchestrator/src/worker_handle/spawn.rs",
        "worker/src/engine/modules/exec.rs",
    ];
    let offenders: Vec<_> = files
        .iter()
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .filter(|f| !allowed.contains(&f.as_str()))
        .filter(|f| {
            std::fs::read_to_string(root.join(f))
                .unwrap()
                .contains("Command::new")
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "Command::new outside the spawn module: {offenders:?}"
    );
}

#[test]
fn the_worker_never_prints_to_stdout() {
    let root = workspace_root();
    // The worker binary's sources; `worker/examples/bare_runtime.rs` is a benchmark baseline that
    // answers on stdout by design and is never a worker.
    let mut files = Vec::new();
    rust_files(&root.join("worker").join("src"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in ["println!", "print!(", "std::io::stdout", "io::stdout("] {
            assert!(!text.contains(needle), "{} uses {needle}", file.display());
        }
    }
}
