#!/usr/bin/env node
// worker/js/inspect-check/gen-fixtures.js
//
// Writes tests/fixtures/inspect_cases.json from Node's own util output (the
// oracle), for the cases of cases.js whose expected text is the same on
// every engine (no stack traces, no function-source or V8-only details, no
// optional host helpers).
//
//   {"expr": "<JS expression>", "type": T, "preview": P, "json": J | null}
//     T/P/J as previewValue() must produce them (api.md §7.6); J is the raw
//     JSON text as a string, or null.
//   {"console": "<JS argument list source>", "text": "<console text>"}
//     text = util.formatWithOptions({breakLength: Infinity, compact: true,
//     customInspect: false}, ...args) with lone surrogates replaced by U+FFFD.
//
// Selection: every case of the §7.6 table, every case marked `key` (the
// spec's bullets), and every 5th remaining portable case of each section of
// cases.js; `--all` writes every portable case instead.
//
// Usage: node worker/js/inspect-check/gen-fixtures.js [--all] [output path]
"use strict";

const H = require("./host.js");
const path = require("path");
const vm = require("vm");
const { values, consoles } = require("./cases.js");

const DEFAULT_OUT = path.resolve(__dirname, "..", "..", "..", "tests", "fixtures", "inspect_cases.json");

const portable = (cs) => !cs.skip && !cs.engine && !cs.quickjs && !cs.noFixture;

function buildEntries(all) {
  const seenPerSection = new Map();
  const selected = (cs) => {
    if (!portable(cs)) return false;
    const n = seenPerSection.get(cs.section) || 0;
    seenPerSection.set(cs.section, n + 1);
    return all || cs.key || cs.section === "§7.6 table" || n % 5 === 0;
  };
  const entries = [];
  for (const cs of values) {
    if (!selected(cs)) continue;
    const value = vm.runInThisContext(`(${cs.expr}\n)`);
    const { type, preview, json } = H.nodePreviewObject(value);
    entries.push({ expr: cs.expr, type, preview, json });
  }
  for (const cs of consoles) {
    if (!selected(cs)) continue;
    const args = vm.runInThisContext(`[${cs.console}\n]`);
    entries.push({ console: cs.console, text: H.wellFormed(H.nodeFormat(args)) });
  }
  return entries;
}

// One entry per line keeps diffs readable.
function render(entries) {
  return `[\n${entries.map((e) => `  ${JSON.stringify(e)}`).join(",\n")}\n]\n`;
}

module.exports = { buildEntries, render, DEFAULT_OUT };

if (require.main === module) {
  H.ensureInternals();
  const fs = require("fs");
  const all = process.argv.includes("--all");
  const out = process.argv.slice(2).filter((a) => a !== "--all")[0] || DEFAULT_OUT;
  const entries = buildEntries(all);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, render(entries));
  console.log(`wrote ${entries.length} entries (${entries.filter((e) => "expr" in e).length} values, ` +
    `${entries.filter((e) => "console" in e).length} console) to ${out}`);
}
