#!/usr/bin/env node
// `npm run check`: runs every offline check in turn (all of them, even after a failure), then
// prints one line per check and exits non-zero if any failed.

import { spawnSync } from "node:child_process";

const CHECKS = ["lint:apex", "lint:format", "test:lwc", "pmd", "convert"];
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

const results = [];
for (const name of CHECKS) {
  console.log(`\n=== npm run ${name}`);
  const started = Date.now();
  const run = spawnSync(npm, ["run", "--silent", name], { stdio: "inherit" });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  results.push({
    name,
    ok: run.status === 0,
    status: run.status ?? run.signal,
    seconds
  });
}

console.log("\n=== summary");
for (const r of results) {
  console.log(
    `${r.ok ? "PASS" : "FAIL"}  ${r.name.padEnd(12)} ${r.seconds.padStart(5)} s${r.ok ? "" : `  (exit ${r.status})`}`
  );
}
const failed = results.filter((r) => !r.ok).length;
console.log(`check: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
