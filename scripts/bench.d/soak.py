"""Soak: how a session's worker grows over many executions (scripts/soak).

One daemon (pool off), one fresh session per snippet; runs the snippet N times over a keep-alive
connection and prints `snippet | executions | worker RSS before -> after | growth per execution`.
A long-lived session should not grow with the number of executions: a growth per execution that
does not level off is a leak (in the engine binding, deno_core or the worker), found this way
twice. Cyclic garbage (deno_core's timer lists) is freed only when QuickJS's cycle collector runs,
at 1.5x the heap's size after the last run, so up to ~2 MB of growth may be garbage: use enough
executions to see it level off. Informational: prints numbers, asserts nothing."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

SNIPPETS = [
    ("a value", "({a: [1, 2, 3], b: {c: 'x'.repeat(100)}})"),
    ("console output", "console.log('line', Math.random())"),
    ("an uncaught error", "throw new Error('boom')"),
    ("a caught error's stack", "try { null.x } catch (e) { e.stack.length }"),
    ("a promise", "Promise.resolve(1).then(x => x + 1)"),
    ("a timer", "setTimeout(() => {}, 0); 1"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--executions", type=int, default=5000)
    args = ap.parse_args()
    bench.BIN_DIR = os.path.abspath(args.bin_dir)
    d = bench.Daemon(args.bin_dir, 0, "soak")
    try:
        tid = d.make_template("soak", startup_file=False)
        print("snippet | executions | worker RSS before -> after | growth per execution")
        print("---|---|---|---")
        for name, code in SNIPPETS:
            _, s = d.conn.req("POST", "/sessions", d.session_body(tid), expect=201)
            # A first round settles what a session allocates once (code paths, caches).
            for _ in range(200):
                bench.repl(d.conn, s["id"], code)
            before = bench.vmrss_kb(s["pid"])
            for _ in range(args.executions):
                bench.repl(d.conn, s["id"], code)
            after = bench.vmrss_kb(s["pid"])
            per = (after - before) * 1024 / args.executions
            print(f"{name} `{code}` | {args.executions} | {before / 1024:.1f} -> {after / 1024:.1f} MB "
                  f"| {per:.0f} B", flush=True)
            d.conn.req("POST", f"/sessions/{s['id']}/close", expect=200)
    finally:
        d.stop()


if __name__ == "__main__":
    main()
