#!/usr/bin/env python3
"""Benchmark driver for scripts/bench (stdlib only, loopback only, bounded in time).

Starts release daemons (`vm-system serve --listen 127.0.0.1:0`) in temp dirs, measures the rows of
issue 7's target table and prints `metric | value | target | ok`, then a Node.js peer baseline
(one `node` child per session, vm.runInContext over a pipe) measured in the same run, with ratios.

The REPL latency and throughput rows and the empty-pool burst are driven by `vm-bench-load` (tests/src/bin/vm-bench-load.rs,
a Rust keep-alive HTTP client, so the client adds little); the same measurements with this script's
Python client follow as info rows. The JS compute rows compare against `examples/bare_runtime`
(worker/examples/bare_runtime.rs: a bare deno_core `JsRuntime` on the same backend, fed scripts
one JSON line at a time so its runs interleave with the session's), with `node -e` as info. After
the empty-pool burst, `vm-bench-fork` (tests/src/bin/vm-bench-fork.rs) measures the CPU of a fork
and of each page its copy writes, for the info rows on the burst's floor. All these binaries are
expected in --bin-dir (scripts/bench builds them).

Usage: bench.py --bin-dir target/release [--live-sessions 1000] [--compute-runs 5]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
T_START = time.monotonic()
ROWS = []  # (metric, value, target, ok)


def log(msg):
    print(f"[bench {time.monotonic() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def pct(xs, p):
    s = sorted(xs)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def row(metric, value, target, ok):
    ROWS.append((metric, value, target, ok))
    log(f"{metric} | {value} | {target} | {ok}")


def fms(v):
    """Milliseconds from a vm-bench-load report (null when nothing was measured)."""
    return "n/a" if v is None else f"{v:.2f} ms"


def okstr(cond):
    return "yes" if cond else "NO"


# ---------------------------------------------------------------- minimal keep-alive HTTP/1.1 client
class Conn:
    """One persistent loopback TCP connection speaking just enough HTTP/1.1 (Content-Length or
    chunked responses). Far cheaper per request than http.client, so the client adds little."""

    def __init__(self, port, timeout=60):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise ConnectionError("connection closed by daemon")
        self.buf += d

    def _readline(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _readn(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    @staticmethod
    def encode(method, path, body=None):
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = (f"{method} /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        return head.encode() + data

    def send_raw(self, raw):
        self.sock.sendall(raw)
        status = int(self._readline().split(b" ")[1])
        length, chunked = None, False
        while True:
            line = self._readline()
            if not line:
                break
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v.strip())
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        if chunked:
            body = b""
            while True:
                n = int(self._readline().split(b";")[0], 16)
                if n == 0:
                    while self._readline():
                        pass
                    break
                body += self._readn(n)
                self._readn(2)
        else:
            body = self._readn(length or 0)
        return status, body

    def req(self, method, path, body=None, expect=None):
        status, raw = self.send_raw(self.encode(method, path, body))
        data = json.loads(raw) if raw else None
        if expect is not None and status != expect:
            raise RuntimeError(f"{method} {path}: expected {expect}, got {status}: {raw[:300]!r}")
        return status, data


# ---------------------------------------------------------------- daemon management
class Daemon:
    def __init__(self, bin_dir, pool_size, tag):
        bin_dir = os.path.abspath(bin_dir)
        self.tmp = tempfile.mkdtemp(prefix=f"vm-bench-{tag}-")
        self.worktree = os.path.join(self.tmp, "wt")
        os.makedirs(self.worktree)
        with open(os.path.join(self.worktree, "init.js"), "w") as f:
            f.write("globalThis.answer = 42;\n")
        env = dict(os.environ, XDG_DATA_HOME=os.path.join(self.tmp, "xdg"), VM_SYSTEM_LOG="warn")
        self.errlog = open(os.path.join(self.tmp, "daemon.log"), "wb")
        cmd = [os.path.join(bin_dir, "vm-system"), "serve", "--listen", "127.0.0.1:0",
               "--db", os.path.join(self.tmp, "db", "vm.db"),
               "--library-dir", os.path.join(self.tmp, "libs"),
               "--worker-bin", os.path.join(bin_dir, "vm-system-worker"),
               "--pool-size", str(pool_size)]
        self.pool_size = pool_size
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errlog, env=env,
                                     start_new_session=True)
        ready = {}

        def read_ready():
            ready["line"] = self.proc.stdout.readline().decode().strip()

        t = threading.Thread(target=read_ready, daemon=True)
        t.start()
        t.join(30)
        line = ready.get("line", "")
        prefix = "vm-system listening on http://"
        if not line.startswith(prefix):
            self.stop(keep=True)
            raise RuntimeError(f"daemon did not print its ready line (got {line!r}); log in {self.tmp}")
        self.port = int(line[len(prefix):].rsplit(":", 1)[1])
        self.conn = Conn(self.port)
        log(f"daemon pid {self.proc.pid} on port {self.port} (pool-size {pool_size})")

    def make_template(self, name, startup_file=True, limits=None):
        _, t = self.conn.req("POST", "/templates", {"name": name}, expect=201)
        if startup_file:
            self.conn.req("POST", f"/templates/{t['id']}/startup-files", {"path": "init.js"}, expect=201)
        if limits:
            self.conn.req("PATCH", f"/templates/{t['id']}/settings", {"limits": limits}, expect=200)
        return t["id"]

    def session_body(self, template_id):
        return {"template_id": template_id, "workspace_id": "bench", "base_commit_oid": "0" * 40,
                "worktree_path": self.worktree}

    def wait_pool_warm(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, s = self.conn.req("GET", "/runtime/summary", expect=200)
            if s["pool"]["warm"] >= s["pool"]["target"]:
                return True
            time.sleep(0.01)
        return False

    def stop(self, keep=False):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self.errlog.close()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def smaps(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            vals = {}
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                    vals[parts[0][:-1]] = int(parts[1])
            return vals
    except OSError:
        return None


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ms(pid):
    """CPU time (ms) used so far by every thread of `pid`, from /proc/PID/task/*/schedstat."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e6


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (field 3, the state, is [0])."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(stat_fields(entry)[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def run_tool(argv, what, timeout=120):
    """Runs one of the helper binaries and returns its last stdout line parsed as JSON."""
    if not os.path.exists(argv[0]):
        raise RuntimeError(f"{what}: {argv[0]} not found (scripts/bench builds it)")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed ({r.returncode}): {r.stderr.strip()[:500]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def load_tool(d, mode, sids, **opts):
    """`vm-bench-load MODE` against daemon `d` for sessions `sids`; its JSON report."""
    argv = [os.path.join(BIN_DIR, "vm-bench-load"), mode, "--addr", f"127.0.0.1:{d.port}"]
    for sid in sids:
        argv += ["--session", sid]
    for k, v in opts.items():
        argv += [f"--{k}", str(v)]
    return run_tool(argv, f"vm-bench-load {mode}")


def repl(conn, sid, code, expect=201):
    return conn.req("POST", "/executions/repl", {"session_id": sid, "input": code}, expect=expect)[1]


# ---------------------------------------------------------------- measurements
def bench_warm(d, tid, samples):
    lat = []
    for _ in range(samples):
        if not d.wait_pool_warm(5.0):
            log("warning: pool did not refill within 5 s")
        time.sleep(0.02)
        t0 = time.perf_counter()
        _, s = d.conn.req("POST", "/sessions", d.session_body(tid), expect=201)
        lat.append((time.perf_counter() - t0) * 1e3)
        d.conn.req("POST", f"/sessions/{s['id']}/close", expect=200)
    p50, p99 = pct(lat, 50), pct(lat, 99)
    row("POST /sessions, 1 startup file, pool warm (n=%d)" % samples,
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms", "p50 <= 5 ms, p99 <= 20 ms", okstr(p50 <= 5 and p99 <= 20))
    return p50


def bench_repl(d, tid, samples):
    _, s = d.conn.req("POST", "/sessions", d.session_body(tid), expect=201)
    sid = s["id"]
    # The pool refills behind the creates above (a worker start is ~60 ms of CPU): let it finish,
    # so that the round trip is measured on a quiet daemon.
    if not d.wait_pool_warm(10.0):
        log("warning: pool did not refill within 10 s")
    time.sleep(0.2)
    # Rust client (vm-bench-load): the target row.
    r = load_tool(d, "latency", [sid], requests=samples, warmup=50, input="1+1")
    last = r["last"]
    if r["errors"] or last.get("status") != "ok" or (last.get("result") or {}).get("json") != 2:
        raise RuntimeError(f"vm-bench-load latency: {r['errors']} errors, first {r['first_error']!r}, "
                           f"last answer {json.dumps(last)[:300]}")
    lat = r["latency"]
    p50, p99 = lat["p50_ms"], lat["p99_ms"]
    row("POST /executions/repl `1+1`, keep-alive, Rust client (n=%d)" % r["requests"],
        f"p50 {p50:.3f} ms, p99 {p99:.3f} ms", "p50 <= 0.5 ms", okstr(p50 <= 0.5))
    # The same with this script's Python client, for comparison with earlier runs.
    raw = Conn.encode("POST", "/executions/repl", {"session_id": sid, "input": "1+1"})
    for _ in range(50):  # warm-up
        d.conn.send_raw(raw)
    lat = []
    for _ in range(samples):
        t0 = time.perf_counter()
        st, body = d.conn.send_raw(raw)
        lat.append((time.perf_counter() - t0) * 1e3)
        if st != 201:
            raise RuntimeError(f"repl answered {st}: {body[:200]!r}")
    ex = json.loads(body)
    assert ex["status"] == "ok" and ex["result"]["json"] == 2, ex
    py50, py99 = pct(lat, 50), pct(lat, 99)
    row("POST /executions/repl `1+1`, keep-alive, Python client (n=%d, info)" % samples,
        f"p50 {py50:.3f} ms, p99 {py99:.3f} ms", "-", "info")
    return sid, p50


def bench_memory(d, sids):
    time.sleep(0.5)
    _, sessions = d.conn.req("GET", "/sessions?status=ready", expect=200)
    mems = [m for m in (smaps(s["pid"]) for s in sessions if s["pid"] and s["id"] in sids) if m]
    if not mems:
        row("idle worker memory", "unavailable", "PSS <= 6 MB, RSS <= 12 MB", "NO")
        return None
    pss, rss = pct([m["Pss"] for m in mems], 50) / 1024, pct([m["Rss"] for m in mems], 50) / 1024
    row("idle session worker memory (median of %d workers)" % len(mems),
        f"PSS {pss:.2f} MB, RSS {rss:.2f} MB", "PSS <= 6 MB, RSS <= 12 MB", okstr(pss <= 6 and rss <= 12))
    return pss, rss


def bench_throughput(d, tid, nsess=8, seconds=5.0):
    sids = [d.conn.req("POST", "/sessions", d.session_body(tid), expect=201)[1]["id"] for _ in range(nsess)]
    # A 1 s warm-up under the same load, not counted: the pool refills behind the creates above
    # and each new session runs its first executions.
    load_tool(d, "throughput", sids, conns=nsess, seconds=1.0, input="1+1")
    # Rust client (vm-bench-load): one thread and connection per session; the target row.
    r = load_tool(d, "throughput", sids, conns=nsess, seconds=seconds, input="1+1")
    rate, errs = r["rate"], r["errors"]
    if errs:
        log(f"throughput errors (Rust client): {errs}, first: {r['first_error']}")
    lat = r["latency"]
    row(f"trivial executions/s, {nsess} sessions concurrently, Rust client ({r['seconds']:.1f} s)",
        f"{rate:,.0f}/s ({r['requests']} ok, {errs} errors; per-request p50 {fms(lat['p50_ms'])}, "
        f"p99 {fms(lat['p99_ms'])})",
        ">= 5,000/s", okstr(rate >= 5000 and not errs))
    # The same with this script's Python client (8 threads under the GIL), for comparison.
    counts = [0] * nsess
    errors = []
    stop_at = [0.0]
    barrier = threading.Barrier(nsess + 1)

    def worker(i):
        c = Conn(d.port)
        raw = Conn.encode("POST", "/executions/repl", {"session_id": sids[i], "input": "1+1"})
        barrier.wait()
        n = 0
        try:
            while time.perf_counter() < stop_at[0]:
                st, body = c.send_raw(raw)
                if st != 201:
                    errors.append((st, body[:200]))
                    break
                n += 1
        finally:
            counts[i] = n
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nsess)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    barrier.wait()
    for t in threads:
        t.join()
    el = time.perf_counter() - t0
    py_rate = sum(counts) / el
    if errors:
        log(f"throughput errors (Python client): {errors[:3]}")
    row(f"trivial executions/s, {nsess} sessions concurrently, Python client ({el:.1f} s, info)",
        f"{py_rate:,.0f}/s" + (f" ({len(errors)} errors)" if errors else ""), "-", "info")
    return sids, rate


def bench_compute(d, node_bin, runs):
    tid = d.make_template("bench-compute", startup_file=False,
                          limits={"cpu_ms": 120000, "wall_ms": 120000, "mem_mb": 1024})
    _, s = d.conn.req("POST", "/sessions", d.session_body(tid), expect=201)
    sid = s["id"]
    cases = {
        "fib(30)": "function fib(n){return n<2?n:fib(n-1)+fib(n-2)}; fib(30);",
        "sort 1e6": "let a=new Array(1e6); let x=12345; for(let i=0;i<1e6;i++){x=(x*1103515245+12345)%2147483648; a[i]=x;} a.sort((p,q)=>p-q);",
        "JSON 1 MB round trip": "let o=[]; for(let i=0;i<14000;i++){o.push({id:i,name:'item'+i,tags:['a','b'],v:i*1.5});} let s=JSON.stringify(o); JSON.parse(s).length + s.length*0;",
    }
    # Each snippet is timed with Date.now() inside the runtime (HTTP and process start excluded).
    timed = {name: "(function(){ const t0 = Date.now(); %s return Date.now() - t0; })()" % code
             for name, code in cases.items()}
    # Baseline: a bare deno_core JsRuntime on the same backend (one process, one runtime, kept
    # running), fed the same scripts. Runs alternate between the session and the bare runtime, so
    # both see the same (shared, noisy) machine; best of `runs` on each side.
    bare_bin = os.path.join(BIN_DIR, "examples", "bare_runtime")
    if not os.path.exists(bare_bin):
        raise RuntimeError(f"bare_runtime: {bare_bin} not found (scripts/bench builds it)")
    bare_proc = subprocess.Popen([bare_bin], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        engine = json.loads(bare_proc.stdout.readline())["engine"]

        def bare_run(name, code):
            bare_proc.stdin.write(json.dumps(code) + "\n")
            bare_proc.stdin.flush()
            line = bare_proc.stdout.readline()
            ans = json.loads(line) if line else {"error": "bare_runtime exited"}
            if "error" in ans:
                raise RuntimeError(f"compute {name} failed in bare_runtime: {ans['error']}")
            return ans["value"]

        sess = {name: [] for name in timed}
        bare = {name: [] for name in timed}
        for _ in range(runs):
            for name, code in timed.items():
                ex = repl(d.conn, sid, code)
                if ex["status"] != "ok":
                    raise RuntimeError(f"compute {name} failed in session: {ex['error']}")
                sess[name].append(ex["result"]["json"])
                bare[name].append(bare_run(name, code))
    finally:
        bare_proc.stdin.close()
        bare_proc.wait(10)
    d.conn.req("POST", f"/sessions/{sid}/close", expect=200)
    out = {}
    for name, code in timed.items():
        ms, mb = min(sess[name]), min(bare[name])
        ratio = ms / max(mb, 0.5)
        out[name] = (ms, mb)
        row(f"JS compute {name}: session vs bare deno_core/{engine} (best of {runs}, interleaved)",
            f"{ms} ms vs {mb:g} ms = {ratio:.2f}x", "<= 1.1x", okstr(ratio <= 1.1))
        if node_bin:
            js = "let r=[]; for(let k=0;k<3;k++){r.push(%s);} console.log(JSON.stringify(r));" % code
            nodes = json.loads(subprocess.run([node_bin, "-e", js], capture_output=True, text=True,
                                              timeout=60, check=True).stdout)
            mn = min(nodes)
            row(f"JS compute {name}: session vs `node -e` (V8 with JIT, best of 3, info)",
                f"{ms} ms vs {mn} ms = {ms / max(mn, 0.5):.1f}x", "-", "info")
    return out


def bench_stops(d, runs=8):
    """Issue 5: wall and CPU limits stop `while (true) {}` within the limit plus 100 ms. The
    overshoot is the execution's recorded `wall_ms` (the daemon's measure from dispatch to the
    worker's Done) or `cpu_ms` (the JS thread's CPU time) minus the limit; the HTTP answer time
    minus the limit is shown beside it, and the worst of the recorded overshoots must be within
    100 ms."""
    limit = 300
    for kind, limits, code in (
        ("wall_ms", {"wall_ms": limit, "cpu_ms": 60000}, "TIMEOUT"),
        ("cpu_ms", {"wall_ms": 60000, "cpu_ms": limit}, "CPU_LIMIT"),
    ):
        tid = d.make_template(f"stop-{kind}", startup_file=False, limits=limits)
        _, s = d.conn.req("POST", "/sessions", d.session_body(tid), expect=201)
        recorded, answered = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            ex = repl(d.conn, s["id"], "while (true) {}")
            answered.append((time.perf_counter() - t0) * 1e3 - limit)
            if (ex.get("error") or {}).get("code") != code:
                raise RuntimeError(f"{kind} stop ended {ex.get('status')}: {ex.get('error')}")
            # The CPU limit counts the JS thread's CPU time: on a busy machine wall time runs ahead.
            recorded.append(ex["metrics"]["wall_ms" if kind == "wall_ms" else "cpu_ms"] - limit)
        _, after = d.conn.req("GET", f"/sessions/{s['id']}", expect=200)
        worst = max(recorded)
        row(f"stop latency, {kind}={limit} on `while (true) {{}}` (n={runs}, session {after['status']})",
            f"recorded {kind.split('_')[0]} overshoot p50 {pct(recorded, 50):.0f} ms, max {worst:.0f} ms; "
            f"HTTP answer p50 +{pct(answered, 50):.0f} ms, max +{max(answered):.0f} ms",
            "<= 100 ms over the limit, session ready",
            okstr(worst <= 100 and after["status"] == "ready"))
        d.conn.req("POST", f"/sessions/{s['id']}/close", expect=200)


def bench_empty_pool(bin_dir, burst):
    d = Daemon(bin_dir, 0, "empty")
    try:
        tid = d.make_template("bench-empty")
        # The fork server is the daemon's one child; the sessions' workers are its copies.
        servers = children(d.proc.pid)
        server = servers[0] if len(servers) == 1 else None
        daemon_cpu0, server_cpu0 = cpu_ms(d.proc.pid), (cpu_ms(server) if server else 0.0)
        # Rust client (vm-bench-load burst): the target row. `burst` connections opened first,
        # then one create each, all released at once.
        r = load_tool(d, "burst", [], template=tid, worktree=d.worktree, count=burst)
        daemon_cpu = (cpu_ms(d.proc.pid) - daemon_cpu0) / burst
        server_cpu = ((cpu_ms(server) - server_cpu0) / burst) if server else float("nan")
        _, ready = d.conn.req("GET", "/sessions?status=ready", expect=200)
        pids = [x["pid"] for x in ready if x.get("pid")]
        bad = r["errors"]
        nan = float("nan")
        p50, p99 = (r["latency"]["p50_ms"] or nan), (r["latency"]["p99_ms"] or nan)
        row(f"session start, pool empty, burst of {burst} concurrent creates" + (f" ({bad} failed)" if bad else ""),
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (all ready in {r['seconds'] * 1e3:.0f} ms)",
            "p50 <= 15 ms", okstr(p50 <= 15 and not bad))
        burst_floor(d, server, pids, daemon_cpu, server_cpu, burst)
        # The same burst from this script's threads (info: the client's own scheduling adds to it).
        res = [None] * burst
        barrier = threading.Barrier(burst)

        def one(i):
            c = Conn(d.port)
            raw = Conn.encode("POST", "/sessions", d.session_body(tid))
            barrier.wait()
            t0 = time.perf_counter()
            st, body = c.send_raw(raw)
            res[i] = ((time.perf_counter() - t0) * 1e3, st)
            c.close()

        ths = [threading.Thread(target=one, args=(i,)) for i in range(burst)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(120)
        lat = [r[0] for r in res if r and r[1] == 201]
        pbad = sum(1 for r in res if not r or r[1] != 201)
        row(f"session start, pool empty, burst of {burst}, Python client (info)" + (f" ({pbad} failed)" if pbad else ""),
            f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms", "-", "info")
        # also a sequential cold start (no queueing behind the burst)
        seq = []
        for _ in range(10):
            t0 = time.perf_counter()
            d.conn.req("POST", "/sessions", d.session_body(tid), expect=201)
            seq.append((time.perf_counter() - t0) * 1e3)
        sp50 = pct(seq, 50)
        row("session start, pool empty, sequential (n=10, info)", f"p50 {sp50:.1f} ms", "-", "info")
        return p50, sp50
    finally:
        d.stop()


def burst_floor(d, server, pids, daemon_cpu, server_cpu, burst):
    """Where a burst's CPU goes, and the p50 this machine's kernel allows at best (info rows).

    A start in a burst costs the daemon, the fork server and the new copy CPU; the copy's share is
    mostly page faults (copy-on-write of the fork server's heap and the binary's pages mapped
    again). `vm-bench-fork` measures what `fork()` and one faulted page cost here with nothing else
    running in the copy; with the copies' fault count that gives a floor per start, and with
    starts completed in arrival order on all CPUs the p50 can be no lower than half the burst
    times that floor, divided by the CPUs."""
    copies = [(cpu_ms(p), int(stat_fields(p)[7])) for p in pids if os.path.exists(f"/proc/{p}")]
    if not copies or server is None:
        log("burst floor: no copies or no fork server found; skipped")
        return
    copy_cpu = sum(c for c, _ in copies) / len(copies)
    faults = int(pct([f for _, f in copies], 50))
    row(f"session start CPU in the burst (mean of {len(copies)}, info)",
        f"daemon {daemon_cpu:.2f} + fork server {server_cpu:.2f} + copy {copy_cpu:.2f} = "
        f"{daemon_cpu + server_cpu + copy_cpu:.2f} ms; a copy takes {faults} page faults (median)",
        "-", "info")
    rss_mb = max(1, round(vmrss_kb(server) / 1024))
    f = run_tool([os.path.join(BIN_DIR, "vm-bench-fork"), "--rss-mb", str(rss_mb),
                  "--pages", str(faults)], "vm-bench-fork")
    fork_ms = f["fork_parent_ms"] + f["copy_idle_ms"]
    floor = fork_ms + faults * f["per_page_us"] / 1e3
    cpus = os.cpu_count() or 1
    half = (burst + 1) // 2
    row(f"kernel floor: fork of a {rss_mb} MB process, and one page fault of its copy (vm-bench-fork, info)",
        f"fork {fork_ms:.2f} ms, {f['per_page_us']:.2f} us per page: {floor:.2f} ms for {faults} faults", "-", "info")
    row(f"burst of {burst}: lowest p50 on {cpus} CPUs with starts in arrival order (info)",
        f"{half * floor / cpus:.1f} ms with only the fork and its faults; "
        f"{half * (floor + daemon_cpu) / cpus:.1f} ms adding this run's daemon CPU per start",
        "p50 <= 15 ms", "info")


def bench_live(bin_dir, target, deadline_s, conc=8):
    d = Daemon(bin_dir, 4, "live")
    try:
        tid = d.make_template("bench-live")
        created = [0]
        failed = []
        lock = threading.Lock()
        stop = threading.Event()
        t_end = time.monotonic() + deadline_s

        def creator():
            c = Conn(d.port)
            raw = Conn.encode("POST", "/sessions", d.session_body(tid))
            while not stop.is_set() and time.monotonic() < t_end:
                with lock:
                    if created[0] + len(failed) >= target:
                        break
                    created[0] += 1
                st, body = c.send_raw(raw)
                if st != 201:
                    with lock:
                        created[0] -= 1
                        failed.append((st, body[:200]))
                    stop.set()
            c.close()

        health = []
        hstop = threading.Event()

        def poll_health():
            c = Conn(d.port)
            raw = Conn.encode("GET", "/health")
            while not hstop.is_set():
                t0 = time.perf_counter()
                c.send_raw(raw)
                health.append((time.perf_counter() - t0) * 1e3)
                time.sleep(0.01)
            c.close()

        ht = threading.Thread(target=poll_health)
        ht.start()
        t0 = time.monotonic()
        ths = [threading.Thread(target=creator) for _ in range(conc)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        took = time.monotonic() - t0
        time.sleep(1.0)
        hstop.set()
        ht.join()
        _, ready = d.conn.req("GET", "/sessions?status=ready", expect=200)
        rss = vmrss_kb(d.proc.pid) / 1024
        hp99 = pct(health, 99)
        n = len(ready)
        why = ""
        if failed:
            why = f", stopped by error {failed[0][0]}"
            log(f"live-sessions failure: {failed[0]}")
        elif n < target:
            why = f", stopped by the {deadline_s:.0f} s time bound"
        row(f"live sessions at once (target {target}, reached {n} in {took:.1f} s{why})",
            f"{n} ready, daemon RSS {rss:.1f} MB, health p99 {hp99:.2f} ms (n={len(health)})",
            "1000 ready, RSS <= 200 MB, health p99 <= 20 ms",
            okstr(n >= 1000 and rss <= 200 and hp99 <= 20))
        return n, rss, hp99
    finally:
        log("stopping live-sessions daemon")
        d.stop()


def bench_node(node_bin, children, rounds):
    r = subprocess.run([node_bin, os.path.join(HERE, "node_baseline.js"), str(children), str(rounds)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"node baseline failed: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


BIN_DIR = None  # --bin-dir, absolute


def main():
    global BIN_DIR
    # scripts/bench wraps us in `timeout`: turn SIGTERM into SystemExit so `finally` stops daemons.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--live-sessions", type=int, default=1000)
    ap.add_argument("--live-deadline-s", type=float, default=60)
    ap.add_argument("--warm-samples", type=int, default=40)
    ap.add_argument("--repl-samples", type=int, default=500)
    ap.add_argument("--compute-runs", type=int, default=5)
    args = ap.parse_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    node_bin = shutil.which("node")
    results = {}

    d = Daemon(args.bin_dir, 4, "main")
    try:
        tid = d.make_template("bench")
        d.wait_pool_warm(10)
        results["warm_p50"] = bench_warm(d, tid, args.warm_samples)
        sid, results["repl_p50"] = bench_repl(d, tid, args.repl_samples)
        sids, _ = bench_throughput(d, tid)
        bench_memory(d, set(sids) | {sid})
        bench_compute(d, node_bin, args.compute_runs)
        bench_stops(d)
    finally:
        d.stop()

    results["empty_p50"], results["empty_seq_p50"] = bench_empty_pool(args.bin_dir, 50)
    if args.live_sessions > 0:
        bench_live(args.bin_dir, args.live_sessions, args.live_deadline_s)

    if node_bin:
        nb = bench_node(node_bin, 10, args.repl_samples)
        row("node baseline: child ready (spawn -> ready, n=10)",
            f"p50 {nb['ready_p50_ms']:.1f} ms", "-", "info")
        row("node baseline: vm.runInContext `1+1` over pipe",
            f"p50 {nb['rtt_p50_ms']:.3f} ms, p99 {nb['rtt_p99_ms']:.3f} ms", "-", "info")
        if nb.get("idle_pss_kb_p50"):
            row("node baseline: idle child memory",
                f"PSS {nb['idle_pss_kb_p50'] / 1024:.1f} MB, RSS {nb['idle_rss_kb_p50'] / 1024:.1f} MB", "-", "info")
        row("ratio: vm-system warm session create / node child ready",
            f"{results['warm_p50'] / nb['ready_p50_ms']:.3f}x", "-", "info")
        row("ratio: vm-system empty-pool start (burst p50) / node child ready",
            f"{results['empty_p50'] / nb['ready_p50_ms']:.3f}x", "-", "info")
        row("ratio: vm-system empty-pool start (sequential p50) / node child ready",
            f"{results['empty_seq_p50'] / nb['ready_p50_ms']:.3f}x", "-", "info")
        row("ratio: vm-system REPL over HTTP (persisted) / node pipe round trip",
            f"{results['repl_p50'] / nb['rtt_p50_ms']:.2f}x", "-", "info")

    print()
    print("metric | value | target | ok")
    print("---|---|---|---")
    for r in ROWS:
        print(" | ".join(r))
    print(f"\n(total bench time {time.monotonic() - T_START:.0f} s; {os.cpu_count()} CPUs; "
          f"load average at end {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
