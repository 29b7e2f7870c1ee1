//! `libs download` / `libs list` against a registry served by the test, and once against the real npm registry.

use super::*;

// ---- libs: a registry served from this test

/// A gzipped npm-style tarball with `files` under `package/`.
fn tarball(files: &[(&str, &str)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("package/{path}"), content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// A tiny HTTP server on 127.0.0.1 answering GETs from a fixed map; it records every path asked.
struct Registry {
    url: String,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Registry {
    /// `packages`: (package, version, integrity override, tarball bytes).
    fn start(packages: Vec<(&str, &str, Option<String>, Vec<u8>)>) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut routes: HashMap<String, Vec<u8>> = HashMap::new();
        for (package, version, integrity, bytes) in packages {
            let tgz = format!("/{package}/-/{package}-{version}.tgz");
            let meta = json!({
                "name": package, "version": version,
                "dist": {"tarball": format!("{url}{tgz}"), "integrity": integrity.unwrap_or_else(|| sri(&bytes)),
                         "shasum": "0000"},
            });
            routes.insert(
                format!("/{package}/{version}"),
                meta.to_string().into_bytes(),
            );
            routes.insert(tgz, bytes);
        }
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(path.clone());
                let (status, body) = match routes.get(&path) {
                    Some(body) => ("200 OK", body.clone()),
                    None => ("404 Not Found", b"{\"error\":\"Not found\"}".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Registry { url, hits }
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

fn libs(dir: &Path, registry: &Registry, args: &[&str]) -> Run {
    let mut command = vm_args(&["libs", "download"]);
    command
        .args(args)
        .arg("--library-dir")
        .arg(dir)
        .arg("--registry")
        .arg(&registry.url);
    run(command, None)
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn libs_download_verifies_extracts_and_caches() {
    let lodash_js = "/* lodash stand-in */ var _ = {chunk: function () { return 'chunked'; }};";
    let ramda_js = "var R = {sum: function (xs) { return xs.length; }};";
    let lodash = tarball(&[
        ("package.json", "{}"),
        ("lodash.js", "full"),
        ("lodash.min.js", lodash_js),
    ]);
    let ramda = tarball(&[("dist/ramda.js", "full"), ("dist/ramda.min.js", ramda_js)]);
    let dayjs = tarball(&[("dayjs.min.js", "var dayjs = 1;")]);
    let moment = tarball(&[("min/moment.min.js", "var moment = 1;")]);
    let registry = Registry::start(vec![
        ("lodash", "4.17.21", None, lodash.clone()),
        ("ramda", "0.29.0", None, ramda),
        (
            "ramda",
            "0.28.0",
            Some("sha1-AAAA".to_string()),
            tarball(&[("dist/ramda.min.js", "old")]),
        ),
        ("dayjs", "1.11.10", Some(sri(b"something else")), dayjs),
        ("moment", "2.29.3", None, moment),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("libs");
    let dir_s = dir.to_str().unwrap().to_string();

    // First download, table mode.
    let out = libs(&dir, &registry, &["lodash", "ramda@0.29.0"]).ok();
    let r = rows(&out);
    assert_eq!(r[0], ["ID", "VERSION", "STATUS", "PATH"]);
    assert_eq!(
        r[1],
        [
            "lodash",
            "4.17.21",
            "downloaded",
            &format!("{dir_s}/lodash-4.17.21.js")
        ]
    );
    assert_eq!(
        r[2],
        [
            "ramda",
            "0.29.0",
            "downloaded",
            &format!("{dir_s}/ramda-0.29.0.js")
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("lodash-4.17.21.js")).unwrap(),
        lodash_js
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ramda-0.29.0.js")).unwrap(),
        ramda_js
    );
    assert_eq!(
        dir_names(&dir),
        ["lodash-4.17.21.js", "ramda-0.29.0.js"],
        "no .tmp left"
    );
    assert_eq!(
        registry.hits(),
        [
            "/lodash/4.17.21",
            "/lodash/-/lodash-4.17.21.tgz",
            "/ramda/0.29.0",
            "/ramda/-/ramda-0.29.0.tgz"
        ]
    );

    // Second run: cached, nothing fetched; json mode.
    let mut command = vm_args(&[
        "libs",
        "download",
        "lodash",
        "--output",
        "json",
        "--registry",
        &registry.url,
        "--library-dir",
        &dir_s,
    ]);
    command.current_dir(tmp.path());
    let cached = one_json_line(&run(command, None).ok());
    assert_eq!(
        cached,
        json!([{"id": "lodash", "version": "4.17.21", "status": "cached", "path": format!("{dir_s}/lodash-4.17.21.js")}])
    );
    assert_eq!(registry.hits().len(), 4);

    // --force downloads again, over a changed file.
    std::fs::write(dir.join("lodash-4.17.21.js"), "stale").unwrap();
    let forced =
        one_json_line(&libs(&dir, &registry, &["lodash", "--force", "--output", "json"]).ok());
    assert_eq!(forced[0]["status"], "downloaded");
    assert_eq!(
        std::fs::read_to_string(dir.join("lodash-4.17.21.js")).unwrap(),
        lodash_js
    );
    assert_eq!(registry.hits().len(), 6);

    // An integrity mismatch writes nothing and exits 1; the other entries still complete.
    let r = libs(
        &dir,
        &registry,
        &["dayjs", "moment@2.29.3", "--output", "json"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let entries = one_json_line(&r.stdout);
    assert_eq!(
        entries[0],
        json!({"id": "dayjs", "version": "1.11.10", "status": "failed", "path": format!("{dir_s}/dayjs-1.11.10.js")})
    );
    assert_eq!(entries[1]["status"], "downloaded");
    assert!(
        r.stderr.contains("dayjs@1.11.10") && r.stderr.contains("integrity"),
        "{r:?}"
    );
    assert_eq!(
        dir_names(&dir),
        ["lodash-4.17.21.js", "moment-2.29.3.js", "ramda-0.29.0.js"],
        "nothing written for dayjs"
    );
    // No sha512 in the metadata, or no such version on the registry: failed.
    let r = libs(&dir, &registry, &["ramda@0.28.0", "lodash@4.17.20"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = rows(&r.stdout);
    assert_eq!(r[1][2], "failed");
    assert_eq!(r[2][2], "failed");
    assert!(!dir.join("ramda-0.28.0.js").exists() && !dir.join("lodash-4.17.20.js").exists());
    // An unknown id is a usage error before anything is fetched.
    let before = registry.hits().len();
    let r = libs(&dir, &registry, &["jquery"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("error: unknown library"), "{r:?}");
    assert_eq!(registry.hits().len(), before);

    // libs list: pinned entries, cached or missing, then other cached versions.
    let mut command = vm_args(&["libs", "list", "--library-dir", &dir_s]);
    command.current_dir(tmp.path());
    let out = run(command, None).ok();
    let r = rows(&out);
    assert_eq!(r[0], ["ID", "VERSION", "STATUS", "PATH"]);
    assert_eq!(
        r[1],
        [
            "dayjs",
            "1.11.10",
            "missing",
            &format!("{dir_s}/dayjs-1.11.10.js")
        ]
    );
    assert_eq!(r[2][..3], ["lodash", "4.17.21", "cached"]);
    assert_eq!(r[3][..3], ["moment", "2.29.4", "missing"]);
    assert_eq!(r[4][..3], ["ramda", "0.29.0", "cached"]);
    assert_eq!(r[5][..3], ["moment", "2.29.3", "cached"]);
    let list = one_json_line(
        &run(
            vm_args(&["libs", "list", "--library-dir", &dir_s, "--output", "json"]),
            None,
        )
        .ok(),
    );
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert_eq!(
        list[1],
        json!({"id": "lodash", "version": "4.17.21", "status": "cached", "path": format!("{dir_s}/lodash-4.17.21.js")})
    );

    // The default directory is $XDG_DATA_HOME/vm-system/libraries.
    let mut command = vm_args(&["libs", "list", "--output", "json"]);
    command.env("XDG_DATA_HOME", tmp.path());
    let list = one_json_line(&run(command, None).ok());
    let expected = tmp.path().join("vm-system/libraries/dayjs-1.11.10.js");
    assert_eq!(list[0]["path"], json!(expected.to_str().unwrap()));
    assert_eq!(list[0]["status"], "missing");
}

/// The one test that uses the network: a real `libs download` from the npm registry into the
/// library directory a daemon serves from (its `--library-dir`), then all four libraries in a session.
#[test]
fn libs_download_real_npm_registry_and_use_all_four_libraries() {
    let d = TestDaemon::start();
    let cli = Cli { d: &d };
    let dir = library_dir(d.dir.path());
    let dir_s = dir.to_str().unwrap();
    let catalog = cli.json(&["template", "list-available-libraries"]);
    assert!(
        catalog
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["cached"] == false),
        "{catalog}"
    );

    let out = run(
        vm_args(&[
            "libs",
            "download",
            "--library-dir",
            dir_s,
            "--output",
            "json",
        ]),
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let entries = one_json_line(&out.stdout);
    let statuses: Vec<_> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("dayjs", "downloaded"),
            ("lodash", "downloaded"),
            ("moment", "downloaded"),
            ("ramda", "downloaded")
        ]
    );
    let listed = one_json_line(
        &run(
            vm_args(&["libs", "list", "--library-dir", dir_s, "--output", "json"]),
            None,
        )
        .ok(),
    );
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "cached"),
        "{listed}"
    );
    let again = one_json_line(
        &run(
            vm_args(&[
                "libs",
                "download",
                "--library-dir",
                dir_s,
                "--output",
                "json",
            ]),
            None,
        )
        .ok(),
    );
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "cached"),
        "{again}"
    );

    let catalog = cli.json(&["template", "list-available-libraries"]);
    assert!(
        catalog
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["cached"] == true),
        "{catalog}"
    );
    let t = id_of(&cli.json(&["template", "create", "--name", "all-libraries"]));
    for lib in ["lodash", "dayjs", "moment", "ramda"] {
        cli.table(&["template", "add-library", &t, "--name", lib]);
    }
    let wt = d.worktree("libs");
    let session = cli.json(&[
        "session",
        "create",
        "--template-id",
        &t,
        "--workspace-id",
        "ws",
        "--base-commit",
        "c",
        "--worktree-path",
        wt.to_str().unwrap(),
    ]);
    assert_eq!(session["status"], "ready", "{session}");
    let s = id_of(&session);
    for (code, expected) in [
        ("_.chunk([1,2,3],2)", json!([[1, 2], [3]])),
        ("dayjs('2020-01-01').year()", json!(2020)),
        ("moment.utc(0).year()", json!(1970)),
        ("R.sum([1,2])", json!(3)),
    ] {
        let detail = cli.json(&["exec", "repl", &s, code]);
        assert_eq!(detail["status"], "ok", "{code}: {detail}");
        assert_eq!(detail["result"]["json"], expected, "{code}");
    }
    let out = cli.table(&["exec", "repl", &s, "_.chunk([1,2,3],2)"]);
    assert!(out.starts_with("=> [ [ 1, 2 ], [ 3 ] ]\n"), "{out}");
}
