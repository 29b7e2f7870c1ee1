// worker/js/inspect-check/qjs/run-fixtures.js
//
// Driver for qjs-host (QuickJS-ng): loads worker/js/inspect.js with the C
// host and checks every entry of a fixture file (tests/fixtures/
// inspect_cases.json format), the way the Rust integration tests will. Then
// it overwrites many built-ins (as user code could) and checks that every
// value entry still renders the same.
// Usage: /tmp/inspect-qjs-host run-fixtures.js <inspect.js> <cases.json> [-v]
"use strict";
const [inspectPath, fixturesPath, flag] = scriptArgs;
const factory = evalScript(readFile(inspectPath), inspectPath);
const api = factory(host);
const cases = JSON.parse(readFile(fixturesPath));
let passed = 0;
let failed = 0;
function report(label, expected, actual) {
  if (actual === expected) {
    passed++;
    if (flag === "-v") print(`ok   ${label}`);
  } else {
    failed++;
    print(`FAIL ${label}\n  expected: ${JSON.stringify(expected)}\n  actual:   ${JSON.stringify(actual)}`);
  }
}
const later = [];
for (const c of cases) {
  let expected;
  let actual;
  let label;
  try {
    if ("expr" in c) {
      label = c.expr;
      expected = `{"type":${JSON.stringify(c.type)},"preview":${JSON.stringify(c.preview)},"json":${c.json === null ? "null" : c.json}}`;
      const value = evalScript(`(${c.expr}\n)`, "<case>");
      actual = api.previewValue(value);
      later.push([label, expected, value]);
    } else {
      label = `console(${c.console})`;
      expected = c.text;
      const args = evalScript(`[${c.console}\n]`, "<case>");
      actual = api.wellFormed(api.formatWithOptions(args));
    }
  } catch (e) {
    actual = `THROWS ${e && e.name}: ${e && e.message}`;
  }
  report(label, expected, actual);
}

// User code overwriting built-ins must not change the rendering.
const GOPD = Object.getOwnPropertyDescriptor;
const DP = Object.defineProperty;
const saved = [];
const targets = [
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
for (let t = 0; t < targets.length; t++) {
  const obj = targets[t][0];
  const keys = targets[t][1];
  for (let k = 0; k < keys.length; k++) {
    saved[saved.length] = [obj, keys[k], GOPD(obj, keys[k])];
    DP(obj, keys[k], { value: function hijacked() { throw new Error("hijacked"); }, writable: true, configurable: true });
  }
}
const results = [];
for (let i = 0; i < later.length; i++) {
  let actual;
  try {
    actual = api.previewValue(later[i][2]);
  } catch (e) {
    actual = "THROWS " + e.message;
  }
  results[results.length] = ["hijacked " + later[i][0], later[i][1], actual];
}
for (let i = saved.length - 1; i >= 0; i--) {
  if (saved[i][2] === undefined) delete saved[i][0][saved[i][1]];
  else DP(saved[i][0], saved[i][1], saved[i][2]);
}
for (const r of results) report(r[0], r[1], r[2]);

print(`quickjs: ${passed} passed, ${failed} failed`);
globalThis.exitCode = failed === 0 ? 0 : 1;
