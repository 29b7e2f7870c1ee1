// Node.js peer baseline for scripts/bench: one `node` child per session, evaluating with
// vm.runInContext over a pipe (newline-delimited JSON). Prints one JSON object on stdout.
// Usage: node node_baseline.js [children=10] [roundtrips=500]
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');

const CHILD = `
const vm = require('vm');
const ctx = vm.createContext({ console });
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    let out;
    try { out = { ok: true, value: vm.runInContext(JSON.parse(line).code, ctx) }; }
    catch (e) { out = { ok: false, error: String(e) }; }
    process.stdout.write(JSON.stringify(out) + '\\n');
  }
});
process.stdout.write('ready\\n');
`;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };

function startChild() {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const c = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
    c.stdout.setEncoding('utf8');
    let buf = '';
    const waiters = [];
    c.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        if (line === 'ready') { resolve({ child: c, readyMs: nowMs() - t0, waiters }); continue; }
        const w = waiters.shift(); if (w) w(JSON.parse(line));
      }
    });
    c.on('error', reject);
  });
}

function evalIn(s, code) {
  return new Promise((resolve) => { s.waiters.push(resolve); s.child.stdin.write(JSON.stringify({ code }) + '\n'); });
}

function memOf(pid) {
  try {
    const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const g = (k) => Number((t.match(new RegExp('^' + k + ':\\s+(\\d+)', 'm')) || [0, 0])[1]);
    return { pss_kb: g('Pss'), rss_kb: g('Rss') };
  } catch { return null; }
}

(async () => {
  const n = Number(process.argv[2] || 10), rounds = Number(process.argv[3] || 500);
  const sessions = [];
  const ready = [];
  for (let i = 0; i < n; i++) { const s = await startChild(); sessions.push(s); ready.push(s.readyMs); }
  const s = sessions[0];
  for (let i = 0; i < 50; i++) await evalIn(s, '1+1'); // warm-up
  const rtt = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = nowMs();
    const r = await evalIn(s, '1+1');
    rtt.push(nowMs() - t0);
    if (!r.ok || r.value !== 2) throw new Error('bad result ' + JSON.stringify(r));
  }
  await new Promise((r) => setTimeout(r, 300));
  const mems = sessions.slice(1).map((x) => memOf(x.child.pid)).filter(Boolean);
  for (const x of sessions) x.child.kill('SIGKILL');
  console.log(JSON.stringify({
    children: n, ready_p50_ms: pct(ready, 50), ready_p99_ms: pct(ready, 99),
    rtt_p50_ms: pct(rtt, 50), rtt_p99_ms: pct(rtt, 99),
    idle_pss_kb_p50: mems.length ? pct(mems.map((m) => m.pss_kb), 50) : null,
    idle_rss_kb_p50: mems.length ? pct(mems.map((m) => m.rss_kb), 50) : null,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
