#!/usr/bin/env node
// Runs PMD's Apex rules (pmd-ruleset.xml) on force-app's classes and triggers, with the PMD jars
// that the npm package @salesforce/code-analyzer-pmd-engine ships, and fails on findings of
// priority 1 or 2 (PMD's "High" and "Medium High") or on a file PMD could not parse.
//
// That package ships PMD's core and language jars but not pmd-cli (no PmdCli main class), so the
// rules run through the small Java entry point it does ship, com.salesforce.sfca.pmdwrapper.PmdWrapper:
//   describe <rules.json> <rulesetList.txt> apex  -> every rule of our ruleset with its priority
//   run <input.json> <results.json>               -> the violations, as JSON
//
// Usage: node scripts/pmd.mjs [--fail-on=N] [--report=reports/pmd.json]
// Exit: 0 clean enough, 1 findings at or above the threshold (or unparsable files), 2 set-up error.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RULESET = path.join(ROOT, "pmd-ruleset.xml");
const SOURCE_DIR = path.join(ROOT, "force-app");
const WRAPPER_CLASS = "com.salesforce.sfca.pmdwrapper.PmdWrapper";
const PRIORITY_BY_NAME = {
  high: 1,
  "medium high": 2,
  medium: 3,
  "medium low": 4,
  low: 5
};

function option(name, fallback) {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  return arg ? arg.slice(prefix.length) : fallback;
}

function die(message) {
  console.error(`pmd: ${message}`);
  process.exit(2);
}

/** The folder holding pmd-core, pmd-apex and the wrapper jar: from the package, else any such folder in node_modules. */
function findJarDir() {
  const wanted = (names) =>
    ["pmd-core-", "pmd-apex-", "sfca-pmd-cpd-wrappers-"].every((prefix) =>
      names.some((n) => n.startsWith(prefix) && n.endsWith(".jar"))
    );
  const candidates = [];
  try {
    const require = createRequire(path.join(ROOT, "package.json"));
    const entry = require.resolve("@salesforce/code-analyzer-pmd-engine");
    let dir = path.dirname(entry);
    while (
      dir !== path.dirname(dir) &&
      !fs.existsSync(path.join(dir, "package.json"))
    ) {
      dir = path.dirname(dir);
    }
    candidates.push(path.join(dir, "dist", "java-lib"));
  } catch {
    // Not resolvable (exports, layout): search below.
  }
  candidates.push(
    path.join(
      ROOT,
      "node_modules",
      "@salesforce",
      "code-analyzer-pmd-engine",
      "dist",
      "java-lib"
    )
  );
  for (const dir of candidates) {
    if (fs.existsSync(dir) && wanted(fs.readdirSync(dir))) return dir;
  }
  const base = path.join(
    ROOT,
    "node_modules",
    "@salesforce",
    "code-analyzer-pmd-engine"
  );
  if (fs.existsSync(base)) {
    for (const rel of fs.readdirSync(base, { recursive: true })) {
      const dir = path.join(base, rel);
      if (fs.statSync(dir).isDirectory() && wanted(fs.readdirSync(dir)))
        return dir;
    }
  }
  return null;
}

function javaCommand() {
  const home = process.env.JAVA_HOME;
  const fromHome = home
    ? path.join(home, "bin", process.platform === "win32" ? "java.exe" : "java")
    : null;
  const java = fromHome && fs.existsSync(fromHome) ? fromHome : "java";
  const probe = spawnSync(java, ["-version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    die(
      `cannot run ${java} (${probe.error ? probe.error.message : probe.stderr.trim()}); PMD needs Java 11 or later`
    );
  }
  const version = (probe.stderr || probe.stdout).split("\n")[0].trim();
  return { java, version };
}

function apexFiles(dir) {
  return fs
    .readdirSync(dir, { recursive: true })
    .filter((rel) => /\.(cls|trigger)$/.test(rel))
    .map((rel) => path.join(dir, rel))
    .sort();
}

function runWrapper(java, jarDir, args) {
  const result = spawnSync(
    java,
    ["-cp", path.join(jarDir, "*"), WRAPPER_CLASS, ...args],
    {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024
    }
  );
  const output = `${result.stdout || ""}${result.stderr || ""}`;
  const errors = output
    .split("\n")
    .filter((line) => line.startsWith("[Error]"));
  if (result.error || result.status !== 0 || errors.length > 0) {
    console.error(output.trim());
    die(
      `PmdWrapper ${args[0]} failed (exit ${result.status}${result.error ? `, ${result.error.message}` : ""})`
    );
  }
  return output;
}

function priorityOf(value) {
  if (/^\d+$/.test(String(value))) return Number(value);
  return PRIORITY_BY_NAME[String(value).toLowerCase()] ?? 3;
}

const failOn = Number(option("fail-on", "2"));
const reportPath = path.resolve(ROOT, option("report", "reports/pmd.json"));

const jarDir = findJarDir();
if (!jarDir)
  die(
    "no PMD jars found: run `npm ci` (they come with @salesforce/code-analyzer-pmd-engine)"
  );
const pmdVersion = (
  fs.readdirSync(jarDir).find((n) => /^pmd-core-.*\.jar$/.test(n)) || ""
).replace(/^pmd-core-|\.jar$/g, "");
const { java, version: javaVersion } = javaCommand();
const files = apexFiles(SOURCE_DIR);
if (files.length === 0) die(`no .cls or .trigger files under ${SOURCE_DIR}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), "dealwatch-pmd-"));
try {
  // 1. The rules of our ruleset, with their (possibly overridden) priorities.
  const rulesetList = path.join(work, "rulesets.txt");
  const rulesFile = path.join(work, "rules.json");
  fs.writeFileSync(rulesetList, RULESET, "utf8");
  runWrapper(java, jarDir, ["describe", rulesFile, rulesetList, "apex"]);
  const described = JSON.parse(fs.readFileSync(rulesFile, "utf8"));
  const ours = described.filter((r) => path.resolve(r.ruleSetFile) === RULESET);
  if (ours.length === 0) die(`PMD found no rules in ${RULESET}`);
  const priorities = new Map(ours.map((r) => [r.name, priorityOf(r.priority)]));
  const urls = new Map(ours.map((r) => [r.name, r.externalInfoUrl]));

  // 2. The violations.
  const input = path.join(work, "input.json");
  const resultsFile = path.join(work, "results.json");
  fs.writeFileSync(
    input,
    JSON.stringify({
      ruleSetInputFile: RULESET,
      runDataPerLanguage: { apex: { filesToScan: files } }
    }),
    "utf8"
  );
  runWrapper(java, jarDir, ["run", input, resultsFile]);
  const results = JSON.parse(fs.readFileSync(resultsFile, "utf8"));

  const findings = results.violations
    .map((v) => ({
      priority: priorities.get(v.rule) ?? 3,
      rule: v.rule,
      file: path.relative(ROOT, v.codeLocation.file),
      line: v.codeLocation.startLine,
      column: v.codeLocation.startCol,
      message: v.message,
      url: urls.get(v.rule) || null
    }))
    .sort(
      (a, b) =>
        a.priority - b.priority ||
        a.file.localeCompare(b.file) ||
        a.line - b.line
    );
  const errors = results.processingErrors || [];

  fs.mkdirSync(path.dirname(reportPath), { recursive: true });
  fs.writeFileSync(
    reportPath,
    JSON.stringify(
      {
        pmdVersion,
        java: javaVersion,
        ruleset: path.relative(ROOT, RULESET),
        rules: ours.length,
        files: files.map((f) => path.relative(ROOT, f)),
        findings,
        processingErrors: errors
      },
      null,
      2
    ) + "\n",
    "utf8"
  );

  for (const f of findings) {
    console.log(
      `P${f.priority} ${f.file}:${f.line}:${f.column} ${f.rule}: ${f.message}`
    );
  }
  for (const e of errors) {
    console.log(`ERROR ${path.relative(ROOT, e.file)}: ${e.message}`);
  }
  const counts = [1, 2, 3, 4, 5]
    .map((p) => `P${p}: ${findings.filter((f) => f.priority === p).length}`)
    .join(", ");
  const blocking = findings.filter((f) => f.priority <= failOn);
  console.log(
    `PMD ${pmdVersion} (${javaVersion}): ${files.length} files, ${ours.length} rules, ${findings.length} findings (${counts}), ${errors.length} processing errors; report ${path.relative(ROOT, reportPath)}`
  );
  if (blocking.length > 0 || errors.length > 0) {
    console.log(
      `FAIL: ${blocking.length} findings of priority ${failOn} or higher, ${errors.length} files PMD could not process`
    );
    process.exitCode = 1;
  } else {
    console.log(`OK: no findings of priority ${failOn} or higher`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
