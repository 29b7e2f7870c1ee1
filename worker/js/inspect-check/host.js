// worker/js/inspect-check/host.js
//
// Builds, inside Node, the `host` object that worker/js/inspect.js expects,
// and loads inspect.js with it. Node-only, for the checker scripts.
//
// Type checks come from `util.types`. getPromiseDetails, getProxyDetails and
// the optional previewEntries / getOwnNonIndexProperties come from Node's internalBinding('util'), reached through
// `require('internal/test/binding')`, which needs `node --expose-internals`
// (the scripts re-launch themselves with that flag, see ensureInternals()).
// Nothing here uses util.inspect to implement a helper.
"use strict";

const fs = require("fs");
const path = require("path");
const util = require("util");
const vm = require("vm");
const { spawnSync } = require("child_process");

const INSPECT_JS = path.resolve(__dirname, "..", "inspect.js");

// Re-run the current script under --expose-internals if needed.
function ensureInternals() {
  if (process.execArgv.includes("--expose-internals")) return;
  const r = spawnSync(process.execPath,
    ["--expose-internals", "--no-warnings", ...process.execArgv, process.argv[1], ...process.argv.slice(2)],
    { stdio: "inherit" });
  process.exit(r.status === null ? 1 : r.status);
}

function makeHost({ withPreviewEntries = true, withNonIndex = false } = {}) {
  // eslint-disable-next-line node/no-missing-require
  const { internalBinding } = require("internal/test/binding");
  const binding = internalBinding("util");
  const t = util.types;
  const host = {
    getPromiseDetails: (p) => {
      const d = binding.getPromiseDetails(p);
      // Node: [state] when pending, [state, result] otherwise; 0 pending,
      // 1 fulfilled, 2 rejected.
      return [d[0], d[1]];
    },
    getProxyDetails: (p) => {
      const d = binding.getProxyDetails(p, true);
      return d === undefined ? null : [d[0], d[1]];
    },
    isProxy: t.isProxy,
    isDate: t.isDate,
    isRegExp: t.isRegExp,
    isMap: t.isMap,
    isSet: t.isSet,
    isWeakMap: t.isWeakMap,
    isWeakSet: t.isWeakSet,
    isPromise: t.isPromise,
    isTypedArray: t.isTypedArray,
    isArrayBuffer: t.isArrayBuffer,
    isDataView: t.isDataView,
    isAsyncFunction: t.isAsyncFunction,
    isGeneratorFunction: t.isGeneratorFunction,
    isGeneratorObject: t.isGeneratorObject,
    isBoxedPrimitive: t.isBoxedPrimitive,
    isNumberObject: t.isNumberObject,
    isStringObject: t.isStringObject,
    isBooleanObject: t.isBooleanObject,
    isBigIntObject: t.isBigIntObject,
    isSymbolObject: t.isSymbolObject,
    isNativeError: t.isNativeError,
    isArgumentsObject: t.isArgumentsObject,
    isMapIterator: t.isMapIterator,
    isSetIterator: t.isSetIterator,
  };
  if (withPreviewEntries) {
    // previewEntries(v) -> entries (weak collections);
    // previewEntries(v, true) -> [entries, isKeyValue] (iterators).
    host.previewEntries = (v, isIterator) =>
      (isIterator === true ? binding.previewEntries(v, true) : binding.previewEntries(v));
  }
  if (withNonIndex) {
    host.getOwnNonIndexProperties = (v, filter) => binding.getOwnNonIndexProperties(v, filter);
  }
  return host;
}

function loadInspect(host) {
  const source = fs.readFileSync(INSPECT_JS, "utf8");
  const factory = vm.runInThisContext(source, { filename: INSPECT_JS });
  if (typeof factory !== "function") throw new Error("inspect.js did not evaluate to a function");
  return factory(host);
}

const NODE_OPTS = Object.freeze({ breakLength: Infinity, compact: true, customInspect: false });

// The oracle: what the spec says, computed with Node's own util.
const JSONStringify = JSON.stringify;
function wellFormed(s) {
  return s.toWellFormed();
}
function nodePreviewObject(v) {
  let type;
  if (v === null) type = "null";
  else {
    let isArr = false;
    try { isArr = Array.isArray(v); } catch { /* revoked proxy */ }
    type = isArr ? "array" : typeof v;
  }
  let preview = wellFormed(typeof v === "string" ? v : util.inspect(v, NODE_OPTS));
  const cps = Array.from(preview);
  if (cps.length > 10000) preview = cps.slice(0, 10000).join("") + "\u2026";
  let json = null;
  try {
    const j = JSONStringify(v);
    if (typeof j === "string") {
      json = j.replace(/(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/g, "$1\\ufffd");
    }
  } catch {
    json = null;
  }
  return { type, preview, json };
}
function nodePreviewValue(v) {
  const { type, preview, json } = nodePreviewObject(v);
  return `{"type":${JSONStringify(type)},"preview":${JSONStringify(preview)},"json":${json === null ? "null" : json}}`;
}
function nodeFormat(args) {
  return util.formatWithOptions(NODE_OPTS, ...args);
}

module.exports = {
  ensureInternals,
  makeHost,
  loadInspect,
  NODE_OPTS,
  nodePreviewObject,
  nodePreviewValue,
  nodeFormat,
  wellFormed,
};
