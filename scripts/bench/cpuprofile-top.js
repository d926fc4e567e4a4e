#!/usr/bin/env node
/*
 * node scripts/bench/cpuprofile-top.js <file.cpuprofile>... [--top N]
 * Self time by function across one or more V8 CPU profiles (node --cpu-prof), heaviest first, with the
 * share of idle, GC and native ("(program)") time: where a proxy worker's time goes.
 */
"use strict";
const fs = require("node:fs");

function summarize(files, top = 25) {
  const agg = new Map();
  let total = 0;
  for (const f of files) {
    const prof = JSON.parse(fs.readFileSync(f, "utf8"));
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    prof.samples.forEach((id, i) => {
      const d = prof.timeDeltas[i] || 0;
      total += d;
      const cf = byId.get(id).callFrame;
      const where = cf.url ? ` ${cf.url.replace(/^.*\/(dist|node:)?/, "")}:${cf.lineNumber + 1}` : "";
      const key = `${cf.functionName || "(anonymous)"}${where}`;
      agg.set(key, (agg.get(key) || 0) + d);
    });
  }
  const rows = [...agg].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { totalMs: total / 1000, rows: rows.map(([k, t]) => ({ fn: k, pct: (100 * t) / (total || 1), ms: t / 1000 })) };
}

module.exports = { summarize };

if (require.main === module) {
  const args = process.argv.slice(2);
  const i = args.indexOf("--top");
  const top = i >= 0 ? Number(args.splice(i, 2)[1]) : 25;
  const s = summarize(args, top);
  console.log(`${s.totalMs.toFixed(0)} ms sampled in ${args.length} profile(s)`);
  for (const r of s.rows) console.log(`${r.pct.toFixed(1).padStart(5)}%  ${r.fn}`);
}
