#!/usr/bin/env node
// Converts force-app (source format) to Metadata API format with @salesforce/source-deploy-retrieve,
// as `sf project convert source` / `sf project deploy start` would, and checks the result:
// every file resolves to a metadata type, every XML file parses with the root element of its
// type, the expected components are all there (and nothing from __tests__ leaks into the
// package), and package.xml lists them.
//
// Usage: node scripts/convert.mjs [--out=reports/mdapi]   (default: a temporary folder, removed after)
// Exit: 0 converted and complete, 1 otherwise.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  ComponentSet,
  MetadataConverter
} from "@salesforce/source-deploy-retrieve";
import { XMLValidator } from "fast-xml-parser";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = path.join(ROOT, "force-app");
const API_VERSION = JSON.parse(
  fs.readFileSync(path.join(ROOT, "sfdx-project.json"), "utf8")
).sourceApiVersion;

const EXPECTED = {
  ApexClass: [
    "DealwatchClient",
    "DealwatchClientTest",
    "DealwatchNotifyQueueable",
    "DealwatchNotifyQueueableTest",
    "DealwatchOpportunityTriggerHandler",
    "DealwatchOpportunityTriggerHandlerTest",
    "DealwatchRiskController",
    "DealwatchRiskControllerTest",
    "DealwatchTestCalloutMock"
  ],
  ApexTrigger: ["DealwatchOpportunityTrigger"],
  CustomField: [
    "Activity.Dealwatch_Key__c",
    "Dealwatch_Settings__c.Integration_User_Id__c",
    "Dealwatch_Settings__c.Tenant_Id__c",
    "Dealwatch_Settings__c.Webhook_Secret__c",
    "Opportunity.Risk_Category__c",
    "Opportunity.Risk_Factors__c",
    "Opportunity.Risk_Score__c",
    "Opportunity.Risk_Updated__c",
    "Opportunity.Win_Probability__c"
  ],
  CustomObject: ["Dealwatch_Settings__c"],
  LightningComponentBundle: ["dealwatchRisk"],
  NamedCredential: ["Dealwatch"],
  PermissionSet: ["Dealwatch_Integration", "Dealwatch_User"]
};

/** Properties the package depends on, checked on the parsed source XML: [type, fullName, path in the XML, expected]. */
const EXPECTED_PROPERTIES = [
  ["CustomField", "Opportunity.Risk_Score__c", "type", "Number"],
  ["CustomField", "Opportunity.Risk_Score__c", "precision", "3"],
  ["CustomField", "Opportunity.Risk_Score__c", "scale", "0"],
  ["CustomField", "Opportunity.Risk_Category__c", "type", "Picklist"],
  [
    "CustomField",
    "Opportunity.Risk_Category__c",
    "valueSet.restricted",
    "true"
  ],
  ["CustomField", "Opportunity.Risk_Factors__c", "type", "LongTextArea"],
  ["CustomField", "Opportunity.Risk_Factors__c", "length", "32768"],
  ["CustomField", "Opportunity.Risk_Factors__c", "visibleLines", "6"],
  ["CustomField", "Opportunity.Risk_Updated__c", "type", "DateTime"],
  ["CustomField", "Opportunity.Win_Probability__c", "type", "Percent"],
  ["CustomField", "Opportunity.Win_Probability__c", "precision", "5"],
  ["CustomField", "Opportunity.Win_Probability__c", "scale", "1"],
  ["CustomField", "Activity.Dealwatch_Key__c", "type", "Text"],
  ["CustomField", "Activity.Dealwatch_Key__c", "length", "255"],
  ["CustomField", "Activity.Dealwatch_Key__c", "externalId", "true"],
  ["CustomField", "Activity.Dealwatch_Key__c", "unique", "true"],
  ["CustomField", "Activity.Dealwatch_Key__c", "caseSensitive", "false"],
  ["CustomField", "Dealwatch_Settings__c.Webhook_Secret__c", "length", "255"],
  ["CustomField", "Dealwatch_Settings__c.Tenant_Id__c", "length", "64"],
  [
    "CustomField",
    "Dealwatch_Settings__c.Integration_User_Id__c",
    "length",
    "18"
  ],
  ["CustomObject", "Dealwatch_Settings__c", "customSettingsType", "Hierarchy"],
  ["CustomObject", "Dealwatch_Settings__c", "visibility", "Protected"],
  ["NamedCredential", "Dealwatch", "principalType", "Anonymous"],
  ["NamedCredential", "Dealwatch", "protocol", "NoAuthentication"],
  ["LightningComponentBundle", "dealwatchRisk", "isExposed", "true"],
  [
    "LightningComponentBundle",
    "dealwatchRisk",
    "targets.target",
    "lightning__RecordPage"
  ]
];

const problems = [];
const problem = (message) => problems.push(message);

function option(name, fallback) {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  return arg ? arg.slice(prefix.length) : fallback;
}

function valueAt(object, dotted) {
  return dotted
    .split(".")
    .reduce((o, key) => (o == null ? undefined : o[key]), object);
}

function allFiles(dir) {
  return fs
    .readdirSync(dir, { recursive: true })
    .map((rel) => path.join(dir, rel))
    .filter((p) => fs.statSync(p).isFile());
}

const outArg = option("out", null);
const outputDirectory = outArg
  ? path.resolve(ROOT, outArg)
  : fs.mkdtempSync(path.join(os.tmpdir(), "dealwatch-mdapi-"));

try {
  // 1. Resolve every source file to a component (unknown files throw here).
  let set;
  try {
    set = ComponentSet.fromSource(SOURCE);
  } catch (error) {
    console.error(`convert: force-app does not resolve: ${error.message}`);
    process.exit(1);
  }
  const components = set.getSourceComponents().toArray();
  const all = components.flatMap((c) => [c, ...c.getChildren()]);
  const found = new Map();
  for (const c of all) {
    const list = found.get(c.type.name) || [];
    list.push(c.fullName);
    found.set(c.type.name, list);
  }

  // Every file below force-app belongs to a component, unless .forceignore'd.
  const claimed = new Set();
  for (const c of all) {
    if (c.xml) claimed.add(path.resolve(c.xml));
    // walkContent() lists what SDR will package: a bundle's files less the .forceignore'd ones.
    for (const file of c.walkContent()) claimed.add(path.resolve(file));
  }
  const forceIgnore = components[0]?.getForceIgnore?.();
  for (const file of allFiles(SOURCE)) {
    const ignored = forceIgnore ? forceIgnore.denies(file) : false;
    if (!claimed.has(file) && !ignored)
      problem(`not part of any component: ${path.relative(ROOT, file)}`);
    if (claimed.has(file) && ignored)
      problem(`.forceignore'd but packaged: ${path.relative(ROOT, file)}`);
  }

  // 2. Every XML file is well-formed (SDR's own parser is lenient), and each component's XML
  //    parses with its type's root element.
  for (const file of allFiles(SOURCE).filter((f) => f.endsWith(".xml"))) {
    const verdict = XMLValidator.validate(fs.readFileSync(file, "utf8"));
    if (verdict !== true) {
      problem(
        `${path.relative(ROOT, file)}:${verdict.err.line}:${verdict.err.col}: ${verdict.err.msg}`
      );
    }
  }
  const parsedBy = new Map();
  for (const c of all) {
    if (!c.xml) continue;
    try {
      const parsed = await c.parseXml();
      const root = c.type.name;
      if (!parsed || typeof parsed[root] !== "object") {
        problem(`${path.relative(ROOT, c.xml)}: root element is not <${root}>`);
        continue;
      }
      parsedBy.set(`${root}:${c.fullName}`, parsed[root]);
      const apiVersion = parsed[root].apiVersion;
      if (apiVersion !== undefined && String(apiVersion) !== API_VERSION) {
        problem(
          `${path.relative(ROOT, c.xml)}: apiVersion ${apiVersion}, expected ${API_VERSION}`
        );
      }
    } catch (error) {
      problem(`${path.relative(ROOT, c.xml)}: ${error.message}`);
    }
  }
  for (const [type, fullName, key, expected] of EXPECTED_PROPERTIES) {
    const parsed = parsedBy.get(`${type}:${fullName}`);
    const actual = parsed === undefined ? undefined : valueAt(parsed, key);
    if (String(actual) !== expected)
      problem(`${type} ${fullName}: ${key} is ${actual}, expected ${expected}`);
  }
  const picklist = valueAt(
    parsedBy.get("CustomField:Opportunity.Risk_Category__c") || {},
    "valueSet.valueSetDefinition.value"
  );
  const values = (Array.isArray(picklist) ? picklist : [picklist])
    .filter(Boolean)
    .map((v) => `${v.fullName}=${v.label}`);
  if (
    values.join(",") !== "Low=Low,Medium=Medium,High=High,Critical=Critical"
  ) {
    problem(
      `Risk_Category__c values are ${values.join(",")}, expected Low, Medium, High, Critical`
    );
  }

  // The permission sets grant what the README promises.
  const RISK_FIELDS = EXPECTED.CustomField.filter((f) =>
    f.startsWith("Opportunity.")
  );
  const grants = (name) => {
    const list =
      valueAt(
        parsedBy.get(`PermissionSet:${name}`) || {},
        "fieldPermissions"
      ) || [];
    return new Map(
      (Array.isArray(list) ? list : [list]).map((p) => [p.field, p])
    );
  };
  const userGrants = grants("Dealwatch_User");
  for (const field of RISK_FIELDS) {
    const grant = userGrants.get(field);
    if (
      !grant ||
      String(grant.readable) !== "true" ||
      String(grant.editable) !== "false"
    ) {
      problem(`Dealwatch_User should read (not edit) ${field}`);
    }
  }
  const classAccess = valueAt(
    parsedBy.get("PermissionSet:Dealwatch_User") || {},
    "classAccesses"
  );
  const classes = (
    Array.isArray(classAccess) ? classAccess : [classAccess]
  ).filter(Boolean);
  if (
    !classes.some(
      (c) =>
        c.apexClass === "DealwatchRiskController" &&
        String(c.enabled) === "true"
    )
  ) {
    problem("Dealwatch_User should grant DealwatchRiskController");
  }
  const integrationGrants = grants("Dealwatch_Integration");
  for (const field of [...RISK_FIELDS, "Activity.Dealwatch_Key__c"]) {
    const grant = integrationGrants.get(field);
    if (
      !grant ||
      String(grant.readable) !== "true" ||
      String(grant.editable) !== "true"
    ) {
      problem(`Dealwatch_Integration should edit ${field}`);
    }
  }

  // 3. The expected components, nothing missing.
  for (const [type, names] of Object.entries(EXPECTED)) {
    const have = new Set(found.get(type) || []);
    for (const name of names)
      if (!have.has(name)) problem(`missing ${type} ${name}`);
  }

  // 4. Convert to Metadata API format.
  const converter = new MetadataConverter();
  const result = await converter.convert(set, "metadata", {
    type: "directory",
    outputDirectory,
    genUniqueDir: false
  });
  const packageDir = result.packagePath || outputDirectory;
  const packageXmlPath = path.join(packageDir, "package.xml");
  if (!fs.existsSync(packageXmlPath)) {
    problem("no package.xml written");
  } else {
    const packageXml = fs.readFileSync(packageXmlPath, "utf8");
    for (const [type, names] of Object.entries(EXPECTED)) {
      if (!packageXml.includes(`<name>${type}</name>`))
        problem(`package.xml has no ${type}`);
      for (const name of names) {
        if (!packageXml.includes(`<members>${name}</members>`))
          problem(`package.xml does not list ${type} ${name}`);
      }
    }
    if (!packageXml.includes(`<version>${API_VERSION}</version>`))
      problem(`package.xml is not version ${API_VERSION}`);
  }
  const written = allFiles(packageDir).map((f) =>
    path.relative(packageDir, f).split(path.sep).join("/")
  );
  for (const file of [
    "classes/DealwatchClient.cls",
    "classes/DealwatchClient.cls-meta.xml",
    "triggers/DealwatchOpportunityTrigger.trigger",
    "objects/Opportunity.object",
    "objects/Activity.object",
    "objects/Dealwatch_Settings__c.object",
    "lwc/dealwatchRisk/dealwatchRisk.js",
    "lwc/dealwatchRisk/parseFactors.js",
    "lwc/dealwatchRisk/dealwatchRisk.js-meta.xml",
    "namedCredentials/Dealwatch.namedCredential",
    "permissionsets/Dealwatch_User.permissionset",
    "permissionsets/Dealwatch_Integration.permissionset"
  ]) {
    if (!written.includes(file)) problem(`converted output lacks ${file}`);
  }
  for (const file of written.filter((f) => f.includes("__tests__")))
    problem(`test file in the package: ${file}`);
  const opportunityObject = path.join(
    packageDir,
    "objects",
    "Opportunity.object"
  );
  if (fs.existsSync(opportunityObject)) {
    const text = fs.readFileSync(opportunityObject, "utf8");
    for (const field of EXPECTED.CustomField.filter((f) =>
      f.startsWith("Opportunity.")
    )) {
      if (!text.includes(`<fullName>${field.split(".")[1]}</fullName>`))
        problem(`Opportunity.object lacks ${field}`);
    }
  }

  // Report.
  const types = [...found.keys()].sort();
  console.log(
    `source-deploy-retrieve: ${all.length} components from ${path.relative(ROOT, SOURCE)}, API ${API_VERSION}`
  );
  for (const type of types) {
    console.log(
      `  ${type.padEnd(26)} ${String(found.get(type).length).padStart(3)}  ${found.get(type).sort().join(", ")}`
    );
  }
  console.log(
    `converted ${written.length} files to ${outArg ? path.relative(ROOT, packageDir) : "a temporary folder"}`
  );
  if (problems.length > 0) {
    for (const p of problems) console.log(`PROBLEM ${p}`);
    console.log(`FAIL: ${problems.length} problems`);
    process.exitCode = 1;
  } else {
    console.log(
      "OK: every component resolved and converted, all expected components present"
    );
  }
} catch (error) {
  console.error(`convert: ${error.stack || error.message}`);
  process.exitCode = 1;
} finally {
  if (!outArg) fs.rmSync(outputDirectory, { recursive: true, force: true });
}
