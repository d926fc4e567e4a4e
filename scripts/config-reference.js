#!/usr/bin/env node
// Prints the README's config reference (generated from the runtime config schema), or with --write puts it
// into README.md between the markers. Needs `npm run build` first.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { configReferenceMarkdown, REFERENCE_START, REFERENCE_END } = require("../dist/src/config/reference");
const table = configReferenceMarkdown();
if (!process.argv.includes("--write")) {
  process.stdout.write(table + "\n");
  process.exit(0);
}
const readme = path.join(__dirname, "..", "README.md");
const text = fs.readFileSync(readme, "utf8");
const a = text.indexOf(REFERENCE_START);
const b = text.indexOf(REFERENCE_END);
if (a < 0 || b < a) {
  process.stderr.write("README.md has no config-reference markers\n");
  process.exit(1);
}
fs.writeFileSync(readme, text.slice(0, a + REFERENCE_START.length) + "\n" + table + "\n" + text.slice(b));
