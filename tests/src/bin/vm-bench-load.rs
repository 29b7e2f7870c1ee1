//! Load generator for scripts/bench: REPL executions and session-create bursts over raw HTTP/1.1, as cheap as possible.
//!
//! std only (plus serde_json to build the request body and read the last answer). Each connection
//! is a blocking `TcpStream` with `TCP_NODELAY` on its own thread, sending one pre-encoded
//! `POST /api/v1/executions/repl` after another and parsing just enough of each response
//! (status line, `Content-Length` or chunked body) to check it is `201` with `"status":"ok"`.
//!
//! ```text
//! vm-bench-load throughput --addr 127.0.0.1:PORT --session ID [--session ID ...]
//!               [--conns N] [--seconds S] [--input CODE]
//! vm-bench-load latency --addr 127.0.0.1:PORT --session ID [--requests N] [--warmup N]
//!               [--input CODE]
//! vm-bench-load burst --addr 127.0.0.1:PORT --template ID --worktree PATH [--count N]
//! ```
//!
//! `throughput`: `--conns` connections (default: one per session), connection `i` driving session
//! `i % sessions`, all started at a barrier and stopped after `--seconds` (default 5; a request in
//! flight at the deadline completes). `latency`: one connection, `--warmup` untimed requests
//! (default 50), then `--requests` timed ones (default 500). Both print one JSON object on stdout:
//! counts, rate, errors (any answer that is not `201` with `"status":"ok"`, or an I/O error, which
//! ends that connection), the first error, and latency percentiles in milliseconds; `latency` also
//! prints the last answer as `last`. `burst`: `--count` connections (default 50), each opened and
//! given its encoded `POST /api/v1/sessions` before a barrier, then each sends that one request at
//! once; a success is `201` with `"status":"ready"`. A Python client would add its own thread
//! scheduling (several ms for 50 threads) to every latency of the burst.

#![allow(clippy::print_stdout, reason = "the result is printed on stdout")]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

/// One keep-alive HTTP/1.1 connection with a reusable read buffer.
struct Conn {
    stream: TcpStream,
    /// Bytes read from the socket; `buf[..filled]` is valid.
    buf: Vec<u8>,
    filled: usize,
    /// The body of the last response (de-chunked if needed).
    body: Vec<u8>,
}

/// Where the head of a response ends and how its body is framed.
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
}

enum Framing {
    Length(usize),
    Chunked,
}

impl Conn {
    fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            filled: 0,
            body: Vec::with_capacity(4096),
        })
    }

    /// Reads more bytes from the socket, growing the buffer when it is full.
    fn fill(&mut self) -> io::Result<()> {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.filled..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the daemon",
            ));
        }
        self.filled += n;
        Ok(())
    }

    /// Drops the first `n` buffered bytes (a whole response), keeping anything after them.
    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    /// Sends `request` (a complete HTTP/1.1 request) and reads the response; returns its status
    /// code, with the body in `self.body`.
    fn round_trip(&mut self, request: &[u8]) -> io::Result<u16> {
        self.stream.write_all(request)?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf[..self.filled])? {
                break head;
            }
            self.fill()?;
        };
        self.body.clear();
        match head.framing {
            Framing::Length(n) => {
                while self.filled < head.len + n {
                    self.fill()?;
                }
                self.body
                    .extend_from_slice(&self.buf[head.len..head.len + n]);
                self.consume(head.len + n);
            }
            Framing::Chunked => loop {
                // Re-parse from the head each time more bytes arrive (answers are small).
                if let Some(end) = parse_chunked(&self.buf[head.len..self.filled], &mut self.body)?
                {
                    self.consume(head.len + end);
                    break;
                }
                self.fill()?;
            },
        }
        Ok(head.status)
    }
}

fn bad_data(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses a response head if `buf` holds all of it.
fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let mut lines = buf[..end].split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad_data("malformed status line"))?;
    let mut framing = Framing::Length(0);
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad_data("malformed content-length"))?;
            framing = Framing::Length(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            && value.to_ascii_lowercase().ends_with(b"chunked")
        {
            framing = Framing::Chunked;
        }
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        framing,
    }))
}

/// Decodes a chunked body if `buf` holds all of it (trailers included): appends the data to
/// `body` and returns the number of bytes it took. Leaves `body` as it found it otherwise.
fn parse_chunked(buf: &[u8], body: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let start_len = body.len();
    let mut pos = 0;
    loop {
        let Some(eol) = find(&buf[pos..], b"\r\n") else {
            body.truncate(start_len);
            return Ok(None);
        };
        let size_field = &buf[pos..pos + eol];
        let size_hex = size_field
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let size = std::str::from_utf8(size_hex)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| bad_data("malformed chunk size"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(eol) = find(&buf[pos..], b"\r\n") else {
                    body.truncate(start_len);
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            body.truncate(start_len);
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// `POST /api/v1/executions/repl` for `session`, fully encoded.
fn repl_request(session: &str, input: &str) -> Vec<u8> {
    let body = serde_json::json!({ "session_id": session, "input": input }).to_string();
    let mut req = format!(
        "POST /api/v1/executions/repl HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// `POST /api/v1/sessions` for `template` in `worktree`, fully encoded.
fn create_request(template: &str, worktree: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "template_id": template,
        "workspace_id": "bench",
        "base_commit_oid": "0".repeat(40),
        "worktree_path": worktree,
    })
    .to_string();
    let mut req = format!(
        "POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// What a successful answer holds: `201` with this `"status"` (`ok` for an execution, `ready` for
/// a session).
const EXECUTION_OK: &[u8] = br#""status":"ok""#;
const SESSION_READY: &[u8] = br#""status":"ready""#;

/// `None` when the answer is `201` and holds `marker`, else why not.
fn check(status: u16, body: &[u8], marker: &[u8]) -> Option<String> {
    if status == 201 && find(body, marker).is_some() {
        None
    } else {
        let shown = &body[..body.len().min(300)];
        Some(format!("{status}: {}", String::from_utf8_lossy(shown)))
    }
}

/// What one connection did.
#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    /// Round-trip times of the successful requests, in nanoseconds.
    latencies: Vec<u64>,
}

impl Tally {
    fn error(&mut self, why: String) {
        self.errors += 1;
        self.first_error.get_or_insert(why);
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }
}

/// One timed request; records it in `tally`. `Err` on an I/O error (the connection is unusable).
fn timed(conn: &mut Conn, request: &[u8], marker: &[u8], tally: &mut Tally) -> io::Result<()> {
    let t0 = Instant::now();
    let status = conn.round_trip(request)?;
    let took = t0.elapsed();
    match check(status, &conn.body, marker) {
        None => {
            tally.ok += 1;
            tally
                .latencies
                .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
        Some(why) => tally.error(why),
    }
    Ok(())
}

/// The `p`th percentile in milliseconds, picked like bench.py's `pct` (no interpolation).
fn pct_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short vector"
    )]
    let i = ((p / 100.0 * sorted.len() as f64) as usize).min(sorted.len() - 1);
    #[allow(clippy::cast_precision_loss, reason = "nanoseconds to milliseconds")]
    let ms = sorted[i] as f64 / 1e6;
    ms
}

fn latency_json(latencies: &mut [u64]) -> serde_json::Value {
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss, reason = "nanoseconds to milliseconds")]
    let mean = if latencies.is_empty() {
        f64::NAN
    } else {
        latencies.iter().sum::<u64>() as f64 / latencies.len() as f64 / 1e6
    };
    serde_json::json!({
        "p50_ms": pct_ms(latencies, 50.0),
        "p90_ms": pct_ms(latencies, 90.0),
        "p99_ms": pct_ms(latencies, 99.0),
        "max_ms": pct_ms(latencies, 100.0),
        "mean_ms": mean,
    })
}

struct Options {
    mode: String,
    addr: SocketAddr,
    sessions: Vec<String>,
    input: String,
    conns: Option<usize>,
    seconds: f64,
    requests: u64,
    warmup: u64,
    template: Option<String>,
    worktree: Option<String>,
    count: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("missing mode: throughput, latency or burst")?;
    if !["throughput", "latency", "burst"].contains(&mode.as_str()) {
        return Err(format!(
            "unknown mode {mode:?}: throughput, latency or burst"
        ));
    }
    let mut addr = None;
    let mut opts = Options {
        mode,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        sessions: Vec::new(),
        input: "1+1".into(),
        conns: None,
        seconds: 5.0,
        requests: 500,
        warmup: 50,
        template: None,
        worktree: None,
        count: 50,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}");
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().map_err(|e| bad(&e))?),
            "--session" => opts.sessions.push(value),
            "--input" => opts.input = value,
            "--conns" => opts.conns = Some(value.parse().map_err(|e| bad(&e))?),
            "--seconds" => opts.seconds = value.parse().map_err(|e| bad(&e))?,
            "--requests" => opts.requests = value.parse().map_err(|e| bad(&e))?,
            "--warmup" => opts.warmup = value.parse().map_err(|e| bad(&e))?,
            "--template" => opts.template = Some(value),
            "--worktree" => opts.worktree = Some(value),
            "--count" => opts.count = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    opts.addr = addr.ok_or("--addr is required")?;
    if opts.mode == "burst" {
        if opts.template.is_none() || opts.worktree.is_none() {
            return Err("burst needs --template and --worktree".into());
        }
        if opts.count == 0 {
            return Err("--count must be positive".into());
        }
    } else if opts.sessions.is_empty() {
        return Err("at least one --session is required".into());
    }
    if !(opts.seconds.is_finite() && opts.seconds > 0.0) {
        return Err("--seconds must be positive".into());
    }
    Ok(opts)
}

/// Joins the connection threads and merges what they did.
fn join_all(threads: Vec<std::thread::JoinHandle<Tally>>) -> Tally {
    let mut total = Tally::default();
    for thread in threads {
        match thread.join() {
            Ok(tally) => total.merge(tally),
            Err(_) => total.error("a connection thread panicked".into()),
        }
    }
    total
}

fn throughput(opts: &Options) -> io::Result<serde_json::Value> {
    let conns = opts.conns.unwrap_or(opts.sessions.len()).max(1);
    let duration = Duration::from_secs_f64(opts.seconds);
    let barrier = Arc::new(Barrier::new(conns + 1));
    let deadline = Arc::new(OnceLock::<Instant>::new());
    let mut threads = Vec::with_capacity(conns);
    for i in 0..conns {
        // Connect before the barrier so connection setup is not timed.
        let mut conn = Conn::connect(opts.addr)?;
        let request = repl_request(&opts.sessions[i % opts.sessions.len()], &opts.input);
        let (barrier, deadline) = (Arc::clone(&barrier), Arc::clone(&deadline));
        threads.push(std::thread::spawn(move || {
            let mut tally = Tally {
                latencies: Vec::with_capacity(1 << 14),
                ..Tally::default()
            };
            barrier.wait();
            let Some(&end) = deadline.get() else {
                return tally;
            };
            while Instant::now() < end {
                if let Err(err) = timed(&mut conn, &request, EXECUTION_OK, &mut tally) {
                    tally.error(format!("I/O error: {err}"));
                    break;
                }
            }
            tally
        }));
    }
    let start = Instant::now();
    let _ = deadline.set(start + duration);
    barrier.wait();
    let mut total = join_all(threads);
    let elapsed = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "a request count")]
    let rate = total.ok as f64 / elapsed;
    Ok(serde_json::json!({
        "mode": "throughput",
        "conns": conns,
        "sessions": opts.sessions.len(),
        "seconds": elapsed,
        "requests": total.ok,
        "rate": rate,
        "errors": total.errors,
        "first_error": total.first_error,
        "latency": latency_json(&mut total.latencies),
    }))
}

fn latency(opts: &Options) -> io::Result<serde_json::Value> {
    let mut conn = Conn::connect(opts.addr)?;
    let request = repl_request(&opts.sessions[0], &opts.input);
    let mut tally = Tally::default();
    for _ in 0..opts.warmup {
        timed(&mut conn, &request, EXECUTION_OK, &mut tally)?;
    }
    // Warm-up errors still count; warm-up round trips are not timed.
    tally.ok = 0;
    tally.latencies.clear();
    tally
        .latencies
        .reserve(usize::try_from(opts.requests).unwrap_or(0));
    for _ in 0..opts.requests {
        timed(&mut conn, &request, EXECUTION_OK, &mut tally)?;
    }
    let last: serde_json::Value = serde_json::from_slice(&conn.body).unwrap_or_default();
    Ok(serde_json::json!({
        "mode": "latency",
        "requests": tally.ok,
        "warmup": opts.warmup,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "latency": latency_json(&mut tally.latencies),
        "last": last,
    }))
}

fn burst(opts: &Options) -> io::Result<serde_json::Value> {
    let (Some(template), Some(worktree)) = (&opts.template, &opts.worktree) else {
        return Err(bad_data("burst needs --template and --worktree"));
    };
    let request = Arc::new(create_request(template, worktree));
    let barrier = Arc::new(Barrier::new(opts.count + 1));
    let mut threads = Vec::with_capacity(opts.count);
    for _ in 0..opts.count {
        // Connect before the barrier so connection setup is not timed.
        let mut conn = Conn::connect(opts.addr)?;
        let (barrier, request) = (Arc::clone(&barrier), Arc::clone(&request));
        threads.push(std::thread::spawn(move || {
            let mut tally = Tally::default();
            barrier.wait();
            if let Err(err) = timed(&mut conn, &request, SESSION_READY, &mut tally) {
                tally.error(format!("I/O error: {err}"));
            }
            tally
        }));
    }
    let start = Instant::now();
    barrier.wait();
    let mut total = join_all(threads);
    Ok(serde_json::json!({
        "mode": "burst",
        "count": opts.count,
        "seconds": start.elapsed().as_secs_f64(),
        "requests": total.ok,
        "errors": total.errors,
        "first_error": total.first_error,
        "latency": latency_json(&mut total.latencies),
    }))
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(msg) => {
            eprintln!("vm-bench-load: {msg}");
            eprintln!(
                "usage: vm-bench-load throughput|latency --addr HOST:PORT --session ID... \
                 [--conns N] [--seconds S] [--requests N] [--warmup N] [--input CODE]\n       \
                 vm-bench-load burst --addr HOST:PORT --template ID --worktree PATH [--count N]"
            );
            return ExitCode::from(2);
        }
    };
    let result = match opts.mode.as_str() {
        "throughput" => throughput(&opts),
        "burst" => burst(&opts),
        _ => latency(&opts),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("vm-bench-load: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_with_content_length() {
        let raw = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(&raw[head.len..], b"{}");
        assert!(matches!(head.framing, Framing::Length(2)));
        assert!(parse_head(&raw[..20]).unwrap().is_none());
    }

    #[test]
    fn chunked_body_whole_and_partial() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\nNEXT";
        let head = parse_head(raw).unwrap().unwrap();
        assert!(matches!(head.framing, Framing::Chunked));
        let body_part = &raw[head.len..];
        let mut body = Vec::new();
        let used = parse_chunked(body_part, &mut body).unwrap().unwrap();
        assert_eq!(body, b"abcdefg");
        assert_eq!(&body_part[used..], b"NEXT");
        for cut in 0..used {
            let mut body = b"keep".to_vec();
            assert!(
                parse_chunked(&body_part[..cut], &mut body)
                    .unwrap()
                    .is_none()
            );
            assert_eq!(body, b"keep");
        }
    }

    #[test]
    fn checks_status_and_outcome() {
        assert!(check(201, br#"{"kind":"repl","status":"ok"}"#, EXECUTION_OK).is_none());
        assert!(check(201, br#"{"kind":"repl","status":"error"}"#, EXECUTION_OK).is_some());
        assert!(check(409, br#"{"status":"ok"}"#, EXECUTION_OK).is_some());
        assert!(check(201, br#"{"id":"x","status":"ready"}"#, SESSION_READY).is_none());
        assert!(check(201, br#"{"id":"x","status":"crashed"}"#, SESSION_READY).is_some());
    }

    #[test]
    fn percentiles_like_bench_py() {
        let v: Vec<u64> = (1..=10).map(|ms| ms * 1_000_000).collect();
        assert!((pct_ms(&v, 50.0) - 6.0).abs() < 1e-9);
        assert!((pct_ms(&v, 99.0) - 10.0).abs() < 1e-9);
        assert!(pct_ms(&[], 50.0).is_nan());
    }
}
