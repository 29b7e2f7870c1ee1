#!/usr/bin/env node
// worker/js/inspect-check/check.js
//
// Cross-checks worker/js/inspect.js against Node's own util (the oracle):
//   inspect(v)             vs util.inspect(v, {breakLength: Infinity, compact: true, customInspect: false})
//   formatWithOptions(a)   vs util.formatWithOptions(<same options>, ...a)
//   previewValue(v)        vs the §7.6 payload built from util.inspect + JSON.stringify
//   exceptionPayload(e)    vs the §7.5 rules
// plus: no getter / proxy trap is ever run by inspect, rendering survives
// user code that overwrites built-ins, and the optional host.previewEntries
// may be missing.
//
// It also checks that tests/fixtures/inspect_cases.json is what
// gen-fixtures.js generates now, and with --quickjs it builds (if needed)
// and runs the QuickJS-ng runner in qjs/ over the fixtures and over every
// portable case (see README.md).
//
// Usage: node worker/js/inspect-check/check.js [-v] [--quickjs]
// (re-launches itself with --expose-internals, see host.js)
"use strict";

const H = require("./host.js");
H.ensureInternals();

const util = require("util");
const vm = require("vm");
const { values, consoles } = require("./cases.js");

const verbose = process.argv.includes("-v");
const api = H.loadInspect(H.makeHost());
const apiNoPreview = H.loadInspect(H.makeHost({ withPreviewEntries: false }));
// With the optional host.getOwnNonIndexProperties (the main runs use the
// pure-JS fallback).
const apiNonIndex = H.loadInspect(H.makeHost({ withNonIndex: true }));

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

function evalExpr(src) {
  return vm.runInThisContext(`(${src}\n)`);
}
function evalArgs(src) {
  return vm.runInThisContext(`[${src}\n]`);
}
function outcome(fn) {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    return { ok: false, value: `THROWS ${e && e.name}: ${e && e.message}` };
  }
}
function check(label, expected, actual) {
  if (expected.ok === actual.ok && expected.value === actual.value) {
    passed++;
    if (verbose) console.log(`ok   ${label}`);
  } else {
    failed++;
    failures.push({ label, expected: expected.value, actual: actual.value });
  }
}
const asOutcome = (value) => ({ ok: true, value });

// --- 1. value cases --------------------------------------------------------------
const evaluated = [];
for (const cs of values) {
  if (cs.skip) {
    skipped++;
    continue;
  }
  const value = evalExpr(cs.expr);
  evaluated.push({ cs, value });
  const expInspect = outcome(() => util.inspect(value, H.NODE_OPTS));
  check(`inspect ${cs.expr}`, expInspect, outcome(() => api.inspect(value)));
  check(`previewValue ${cs.expr}`, outcome(() => H.nodePreviewValue(value)),
    outcome(() => api.previewValue(value)));
  check(`inspect (host getOwnNonIndexProperties) ${cs.expr}`, expInspect,
    outcome(() => apiNonIndex.inspect(value)));
}

// --- 2. console cases ---------------------------------------------------------------
const evaluatedArgs = [];
for (const cs of consoles) {
  if (cs.skip) {
    skipped++;
    continue;
  }
  const args = evalArgs(cs.console);
  evaluatedArgs.push({ cs, args });
  check(`format ${cs.console}`, outcome(() => H.nodeFormat(args)),
    outcome(() => api.formatWithOptions(args)));
}

// Extra: formatWithOptions with the exact args arrays of every value case
// (single argument => inspect / raw string).
for (const { cs, value } of evaluated) {
  check(`format(value) ${cs.expr}`, outcome(() => H.nodeFormat([value])),
    outcome(() => api.formatWithOptions([value])));
  check(`format('%s', value) ${cs.expr}`, outcome(() => H.nodeFormat(["%s", value])),
    outcome(() => api.formatWithOptions(["%s", value])));
  check(`format('%o', value) ${cs.expr}`,
    outcome(() => H.nodeFormat(["%o", value])),
    outcome(() => api.formatWithOptions(["%o", value])));
}

// --- 3. exception payloads ---------------------------------------------------------------
function expectedException(e) {
  // §7.5, written independently of inspect.js.
  const isErrorLike = (e !== null && (typeof e === "object" || typeof e === "function")) &&
    (util.types.isNativeError(e) || e instanceof Error || typeof e.message === "string");
  let name = null;
  let message;
  let stack = null;
  if (isErrorLike) {
    name = typeof e.name === "string" ? H.wellFormed(e.name) : null;
    message = H.wellFormed(String(e.message));
    stack = typeof e.stack === "string" ? H.wellFormed(e.stack) : null;
  } else {
    message = H.nodePreviewObject(e).preview;
  }
  return JSON.stringify({ name, message, stack });
}
const thrownValues = [
  "new Error('boom')",
  "new TypeError('bad')",
  "(() => { try { undefinedVariable; } catch (e) { return e; } })()",
  "(() => { const e = new Error('m'); e.name = 42; return e; })()",
  "(() => { const e = new Error('m'); e.stack = 7; return e; })()",
  "(() => { const e = new Error('lone \\ud800'); e.name = 'N\\udc00'; return e; })()",
  "(() => { class E extends Error {} return new E('sub'); })()",
  "({message: 'plain object message'})",
  "({message: 'with name', name: 'Named', stack: 'custom stack'})",
  "({message: 42})",
  "({name: 'NoMessage'})",
  "'a string'",
  "'lone \\ud800'",
  "42",
  "-0",
  "10n",
  "null",
  "undefined",
  "true",
  "Symbol('thrown')",
  "[1, 2]",
  "{a: {b: {c: {d: 1}}}}",
  "(() => { const e = Object.create(Error.prototype); return e; })()",
  "Object.create(null)",
  "'x'.repeat(20000)",
];
for (const src of thrownValues) {
  const e = evalExpr(src);
  check(`exceptionPayload ${src}`, outcome(() => expectedException(e)),
    outcome(() => api.exceptionPayload(e)));
}
// Never throws, even when everything throws.
{
  const nasty = [
    Object.defineProperty(new Error("x"), "message", { get() { throw new Error("getter"); } }),
    Object.defineProperty(new Error("x"), "name", { get() { throw new Error("getter"); } }),
    Object.defineProperty(new Error("x"), "stack", { get() { throw new Error("getter"); } }),
    { get message() { throw new Error("getter"); } },
    Object.assign(new Error("x"), { message: { toString() { throw new Error("toString"); } } }),
    new Proxy({}, { get() { throw new Error("trap"); }, getPrototypeOf() { throw new Error("trap"); } }),
    (() => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy; })(),
    { [Symbol.toStringTag]: "x", get [Symbol.toStringTag]() { throw new Error("tag"); } },
  ];
  for (let i = 0; i < nasty.length; i++) {
    const r = outcome(() => JSON.parse(api.exceptionPayload(nasty[i])));
    const good = r.ok && r.value && typeof r.value.message === "string" &&
      (r.value.name === null || typeof r.value.name === "string") &&
      (r.value.stack === null || typeof r.value.stack === "string");
    check(`exceptionPayload never throws #${i}`, asOutcome(true), asOutcome(good));
  }
  const r = outcome(() => JSON.parse(api.exceptionPayload(nasty[0])));
  check("exceptionPayload throwing message getter", asOutcome(JSON.stringify({ name: "Error", message: "<exception while rendering exception>", stack: null })),
    asOutcome(JSON.stringify({ name: r.value.name, message: r.value.message, stack: r.value.stack === null ? null : r.value.stack })));
}

// --- 4. inspect never runs getters or proxy traps -------------------------------------------------
{
  let calls = 0;
  const hit = () => { calls++; return 1; };
  const trapAll = {};
  for (const t of ["get", "set", "has", "ownKeys", "getOwnPropertyDescriptor", "getPrototypeOf",
    "defineProperty", "deleteProperty", "apply", "construct", "isExtensible", "preventExtensions",
    "setPrototypeOf"]) {
    trapAll[t] = () => { calls++; throw new Error(`trap ${t}`); };
  }
  const subjects = [
    { get a() { return hit(); }, set b(v) { hit(); } },
    [Object.defineProperty([], 0, { get: hit, enumerable: true })],
    new Proxy({ a: 1 }, trapAll),
    new Proxy([1, 2], trapAll),
    new Proxy(function f() {}, trapAll),
    { nested: new Proxy({}, trapAll) },
    new Map([[new Proxy({}, trapAll), new Proxy([], trapAll)]]),
    (() => { class A { get x() { return hit(); } } return new A(); })(),
  ];
  for (let i = 0; i < subjects.length; i++) {
    calls = 0;
    const a = outcome(() => api.inspect(subjects[i]));
    const b = outcome(() => api.formatWithOptions(["%O %o", subjects[i], subjects[i]]));
    check(`no getter/trap calls #${i}`, asOutcome("0 calls"),
      asOutcome(a.ok && b.ok ? `${calls} calls` : `${a.value} ${b.value}`));
  }
}

// --- 5. host without previewEntries --------------------------------------------------------------
{
  const expectations = [
    ["new Map([[1, 2]]).entries()", "[Map Entries] { <items unknown> }"],
    ["new Set([1]).values()", "[Set Iterator] { <items unknown> }"],
    ["new Map([[1, 2]])", "Map(1) { 1 => 2 }"],
  ];
  for (const [src, exp] of expectations) {
    const val = evalExpr(src);
    const got = outcome(() => apiNoPreview.inspect(val));
    // Entries iterators are only recognised through previewEntries.
    const want = src.includes("entries()") ? "[Map Iterator] { <items unknown> }" : exp;
    check(`no previewEntries ${src}`, asOutcome(want), got);
  }
  check("no previewEntries %o WeakMap", asOutcome("WeakMap { <items unknown> }"),
    outcome(() => apiNoPreview.formatWithOptions(["%o", new WeakMap()])));
}

// --- 6. user code overwriting built-ins cannot break or hijack rendering ----------------------------
{
  const expectedValues = evaluated.map(({ cs, value }) => ({
    cs, value,
    inspect: outcome(() => util.inspect(value, H.NODE_OPTS)),
    preview: outcome(() => H.nodePreviewValue(value)),
  }));
  const expectedConsole = evaluatedArgs.map(({ cs, args }) => ({
    cs, args, text: outcome(() => H.nodeFormat(args)),
  }));
  const saved = [];
  const GOPD = Object.getOwnPropertyDescriptor;
  const RA = Reflect.apply;
  const nodeFormatWithOptions = util.formatWithOptions;
  const DP = Object.defineProperty;
  const hijack = (obj, key) => {
    const desc = GOPD(obj, key);
    saved[saved.length] = [obj, key, desc];
    DP(obj, key, {
      value: function hijacked() { throw new Error(`hijacked ${String(key)}`); },
      writable: true, configurable: true, enumerable: false,
    });
  };
  const protoTargets = [
    [Array.prototype, ["join", "push", "pop", "map", "filter", "forEach", "includes", "indexOf",
      "splice", "slice", "sort", "unshift", "concat", Symbol.iterator]],
    [String.prototype, ["slice", "indexOf", "includes", "repeat", "padStart", "padEnd", "split",
      "replace", "replaceAll", "startsWith", "endsWith", "charCodeAt", "codePointAt", "toLowerCase",
      "trim", "normalize", "toWellFormed", "lastIndexOf"]],
    [Object, ["keys", "getOwnPropertyNames", "getOwnPropertySymbols", "getOwnPropertyDescriptor",
      "getPrototypeOf", "is", "freeze"]],
    [Object.prototype, ["hasOwnProperty", "propertyIsEnumerable"]],
    [Map.prototype, ["get", "set", "has", "entries", "forEach", Symbol.iterator]],
    [Set.prototype, ["add", "has", "values", "forEach", Symbol.iterator]],
    [Object.getPrototypeOf(new Map().entries()), ["next"]],
    [Object.getPrototypeOf(new Set().values()), ["next"]],
    [Object.getPrototypeOf([][Symbol.iterator]()), ["next"]],
    [Function.prototype, ["call", "apply", "bind"]],
    [Symbol.prototype, ["toString"]],
    [Number.prototype, ["toString"]],
    [RegExp.prototype, ["exec", Symbol.replace, Symbol.split]],
    [JSON, ["stringify"]],
    [Math, ["min", "max", "floor", "round", "sqrt"]],
    [Reflect, ["ownKeys", "apply"]],
    [Number, ["parseInt", "parseFloat", "isNaN"]],
  ];
  const results = [];
  const savedConsole = console;
  // (index loops only: Array iteration itself is hijacked below)
  for (let t = 0; t < protoTargets.length; t++) {
    const target = protoTargets[t][0];
    const keys = protoTargets[t][1];
    for (let k = 0; k < keys.length; k++) hijack(target, keys[k]);
  }
  try {
    for (let i = 0; i < expectedValues.length; i++) {
      const ev = expectedValues[i];
      results[results.length] = [`hijacked inspect ${ev.cs.expr}`, ev.inspect, outcome(() => api.inspect(ev.value))];
      results[results.length] = [`hijacked previewValue ${ev.cs.expr}`, ev.preview, outcome(() => api.previewValue(ev.value))];
    }
    for (let i = 0; i < expectedConsole.length; i++) {
      const ec = expectedConsole[i];
      // Conversions that reach user-visible built-ins (e.g. %d on [5] calls
      // Array.prototype.join) behave as in Node: compare with Node's own
      // util under the same hijack (Node's util uses captured primordials).
      const callArgs = [H.NODE_OPTS];
      for (let a = 0; a < ec.args.length; a++) callArgs[a + 1] = ec.args[a];
      let nodeNow = outcome(() => RA(nodeFormatWithOptions, util, callArgs));
      // Node's formatValue itself calls the unprotected `ctx.seen.includes`;
      // where only that broke, the pre-hijack text is the expectation.
      if (!nodeNow.ok && nodeNow.value === "THROWS Error: hijacked includes") nodeNow = ec.text;
      results[results.length] = [`hijacked format ${ec.cs.console}`, nodeNow, outcome(() => api.formatWithOptions(ec.args))];
    }
  } finally {
    for (let i = saved.length - 1; i >= 0; i--) {
      const obj = saved[i][0];
      const key = saved[i][1];
      const desc = saved[i][2];
      if (desc === undefined) delete obj[key];
      else DP(obj, key, desc);
    }
  }
  savedConsole.assert(console === savedConsole);
  for (const [label, exp, act] of results) {
    // JSON.stringify was hijacked: previewValue's captured copy still works,
    // and %j keeps Node's behaviour because both use captured copies.
    check(label, exp, act);
  }
}

// --- 7. the fixture file is current ------------------------------------------------------------------
const fs = require("fs");
const path = require("path");
const gen = require("./gen-fixtures.js");
{
  let onDisk = null;
  try {
    onDisk = fs.readFileSync(gen.DEFAULT_OUT, "utf8");
  } catch {
    onDisk = "(missing)";
  }
  check("tests/fixtures/inspect_cases.json matches gen-fixtures.js",
    asOutcome("up to date"), asOutcome(onDisk === gen.render(gen.buildEntries(false)) ? "up to date" : "stale: run gen-fixtures.js"));
}

// --- 8. optional: the same fixtures on QuickJS-ng ------------------------------------------------------
if (process.argv.includes("--quickjs")) {
  const { spawnSync } = require("child_process");
  const os = require("os");
  const bin = process.env.OUT || "/tmp/inspect-qjs-host";
  if (!fs.existsSync(bin)) {
    const b = spawnSync(path.join(__dirname, "qjs", "build.sh"), [], { stdio: "inherit", env: { ...process.env, OUT: bin } });
    if (b.status !== 0) {
      failed++;
      failures.push({ label: "build QuickJS runner", expected: "built", actual: `exit ${b.status}` });
    }
  }
  if (fs.existsSync(bin)) {
    const allFile = path.join(os.tmpdir(), `inspect_cases_all_${process.pid}.json`);
    fs.writeFileSync(allFile, gen.render(gen.buildEntries(true)));
    for (const file of [gen.DEFAULT_OUT, allFile]) {
      const r = spawnSync(bin, [path.join(__dirname, "qjs", "run-fixtures.js"),
        path.resolve(__dirname, "..", "inspect.js"), file], { encoding: "utf8" });
      process.stdout.write(r.stdout.split("\n").filter((l) => l.startsWith("FAIL") || l.startsWith("  ")).join("\n"));
      const m = /quickjs: (\d+) passed, (\d+) failed/.exec(r.stdout);
      console.log(`QuickJS-ng, ${path.basename(file)}: ${m ? m[0] : `runner failed: ${r.stderr}`}`);
      check(`QuickJS-ng run of ${path.basename(file)}`, asOutcome("0 failed"),
        asOutcome(m && r.status === 0 ? `${m[2]} failed` : "runner failed"));
    }
    fs.unlinkSync(allFile);
  }
}

// --- report ------------------------------------------------------------------------------------------
for (const f of failures) {
  console.log(`FAIL ${f.label}`);
  console.log(`  expected: ${JSON.stringify(f.expected)}`);
  console.log(`  actual:   ${JSON.stringify(f.actual)}`);
}
const count = (f) => values.filter(f).length + consoles.filter(f).length;
console.log(`${values.length} value cases, ${consoles.length} console cases: ` +
  `${skipped} skipped (known divergences), ${count((x) => x.engine || x.quickjs)} engine/host-specific ` +
  `and ${count((x) => x.noFixture)} throwing (checked here, not in the fixtures)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
