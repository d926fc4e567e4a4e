/**
 * `ctera-lb plan --stack <name>`: the offline plan. Runs the stack program (stacks/program.ts) with the
 * stack's config (stacks/Pulumi.<name>.yaml) under Pulumi's mocks — no Pulumi CLI, no cloud credentials —
 * and prints every resource it would create (type token, name, the properties that matter) and the
 * rendered proxy config. A bad stack file fails like the component does: exit 2, the field named.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "./config";
import type { PlannedResource } from "./component/offline";

export interface PlanOptions {
  /** Directory of Pulumi.<stack>.yaml files; default: the package's stacks/. */
  stacksDir?: string;
  /** Run scripts/build-image for the real image hash (default true). */
  buildImage?: boolean;
}

export interface StackPlan {
  stack: string;
  project: string;
  resources: PlannedResource[];
  outputs: Record<string, unknown>;
  proxyConfig: string;
  /** Notes about what the offline plan could not know (e.g. encrypted config values). */
  notes: string[];
  text: string;
}

const PROJECT = "ctera-portal-lb";

export async function planCommand(args: string[], out: { stdout: (s: string) => void }): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { stack: { type: "string" }, "stacks-dir": { type: "string" }, "no-build": { type: "boolean" }, json: { type: "boolean" } },
  });
  if (!values.stack) throw new ConfigError([{ path: "--stack", message: "required: ssl-on-portal or ssl-on-lb (a stacks/Pulumi.<name>.yaml)" }], "plan arguments");
  const plan = await planStack(values.stack, { stacksDir: values["stacks-dir"], buildImage: !values["no-build"] });
  if (values.json) {
    const { text: _t, ...data } = plan;
    out.stdout(JSON.stringify(data, null, 2) + "\n");
  } else out.stdout(plan.text);
  return 0;
}

export async function planStack(stackName: string, opts: PlanOptions = {}): Promise<StackPlan> {
  const root = packageRoot();
  const dir = opts.stacksDir ?? path.join(root, "stacks");
  const file = path.join(dir, `Pulumi.${stackName}.yaml`);
  if (!/^[A-Za-z0-9_.-]+$/.test(stackName) || !existsSync(file)) {
    throw new ConfigError([{ path: "--stack", message: `no stack file ${path.basename(file)} in ${dir}: use ssl-on-portal or ssl-on-lb` }], "plan arguments");
  }
  const { config, secretKeys, notes } = readStackConfig(file);
  const { runOffline, redact } = await import("./component/offline");
  const { deployFromConfig } = await import("../stacks/program");
  let run;
  try {
    run = await runOffline(() => deployFromConfig(), { project: PROJECT, stack: stackName, config, secretKeys, buildImage: opts.buildImage ?? true });
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.issues, `${e.message.split(":")[0].replace(/^invalid /, "")} (stack file ${path.basename(file)})`);
    throw e;
  }
  const outputs = run.result as Record<string, unknown>;
  const resources = run.resources
    .map((r) => ({ ...r, inputs: redact(r.inputs) as Record<string, unknown> }))
    .sort((a, b) => (a.type === b.type ? (a.name < b.name ? -1 : 1) : a.type < b.type ? -1 : 1));
  const proxyConfig = String(outputs.proxyConfig ?? "");
  const plan = { stack: stackName, project: PROJECT, resources, outputs, proxyConfig, notes };
  return { ...plan, text: formatPlan(plan) };
}

/** Pulumi.<stack>.yaml → the flat config map the runtime reads ("project:key" → string or JSON). */
export function readStackConfig(file: string): { config: Record<string, string>; secretKeys: string[]; notes: string[] } {
  // js-yaml comes with @pulumi/pulumi (its own YAML reader); the plan only runs where @pulumi is installed.
  const yaml = require("js-yaml") as { load: (s: string) => unknown };
  let doc: unknown;
  try {
    doc = yaml.load(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError([{ path: "", message: `${path.basename(file)} is not YAML: ${(e as Error).message.split("\n")[0]}` }], "stack file");
  }
  const raw = (doc as { config?: Record<string, unknown> } | null)?.config ?? {};
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  const notes: string[] = [];
  let pair: { cert: string; key: string } | undefined;
  for (const [k, v] of Object.entries(raw)) {
    const key = k.includes(":") ? k : `${PROJECT}:${k}`;
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v) {
      // Encrypted with the stack's secrets provider: not readable offline. TLS gets a throwaway pair.
      secretKeys.push(key);
      if (/:tls(Certificate|PrivateKey)$/.test(key)) {
        pair ??= throwawayTlsPair();
        config[key] = key.endsWith("Certificate") ? pair.cert : pair.key;
        notes.push(`${key} is encrypted: the plan uses a throwaway self-signed pair in its place`);
      } else {
        config[key] = "[secret]";
        notes.push(`${key} is encrypted: shown as [secret]`);
      }
      continue;
    }
    config[key] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return { config, secretKeys, notes };
}

function throwawayTlsPair(): { cert: string; key: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "ctera-lb-plan-"));
  try {
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=plan.invalid", "-days", "1",
      "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")], { stdio: "ignore" });
    return { cert: readFileSync(path.join(dir, "cert.pem"), "utf8"), key: readFileSync(path.join(dir, "key.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The properties worth reading in a plan, per resource; everything else is left out. */
const KEY_PROPS = [
  "subnetId", "deviceIndex", "networkInterfaceId", "instanceId", "primaryNetworkInterface", "securityGroups", "securityGroupId",
  "vpcId", "ipProtocol", "fromPort", "toPort", "cidrIpv4", "cidrIpv6", "prefixListId", "privateIpsCount", "instanceType", "ami",
  "iamInstanceProfile", "metadataOptions", "rootBlockDevice", "userDataReplaceOnChange", "key", "contentType", "domain",
  "privateIpAddress", "versioningConfiguration", "rules", "blockPublicAcls", "restrictPublicBuckets", "rule", "create", "policyArn",
];

function formatPlan(p: Omit<StackPlan, "text">): string {
  const ids = new Map(p.resources.map((r) => [r.id, r.name]));
  const show = (v: unknown): string =>
    JSON.stringify(v, (_k, x) => (typeof x === "string" && ids.has(x) ? `→${ids.get(x)}` : x)) ?? "undefined";
  const lines: string[] = [];
  lines.push(`ctera-lb plan: stack ${p.stack} (project ${p.project}), offline: Pulumi mocks, no cloud calls`);
  for (const n of p.notes) lines.push(`note: ${n}`);
  const cfg = p.proxyConfig ? JSON.parse(p.proxyConfig) : undefined;
  lines.push("", `RESOURCES (${p.resources.length})`);
  for (const r of p.resources) {
    const props: string[] = [];
    for (const k of KEY_PROPS) if (r.inputs[k] !== undefined) props.push(`${k}=${show(r.inputs[k])}`);
    if (typeof r.inputs.userData === "string") {
      const sha = /CTERA_LB_IMAGE_SHA256='([0-9a-f]{64})'/.exec(r.inputs.userData)?.[1];
      const cif = /CTERA_LB_CLIENT_IF='(\w+)'/.exec(r.inputs.userData)?.[1];
      props.push(`userData=<${r.inputs.userData.length} bytes: image sha256 ${sha}, VIP on ${cif}, no secrets>`);
    }
    if (r.type === "aws:iam/rolePolicy:RolePolicy" && typeof r.inputs.policy === "string") {
      const doc = JSON.parse(r.inputs.policy) as { Statement: { Action: string[]; Resource: string[] | string }[] };
      for (const s of doc.Statement) props.push(`allow ${s.Action.join(",")} on ${[s.Resource].flat().join(", ")}`);
    }
    lines.push(`  + ${r.type}  ${r.name}${props.length ? "\n      " + props.join("\n      ") : ""}`);
  }
  if (cfg) {
    lines.push("", "LISTENERS (VIP ports, from the rendered config)");
    for (const vs of cfg.virtualServices) {
      const ls = vs.listeners.map((l: { address: string; port: number; tls?: unknown }) => `${l.address}:${l.port}${l.tls ? " (tls)" : ""}`);
      const rs = vs.realServers.map((s: { name: string; address: string; port?: number }) => `${s.name} ${s.address}${s.port ? ":" + s.port : ""}`);
      lines.push(`  ${vs.name} [${vs.mode}] ${ls.join(", ")} → ${rs.join(", ")}; health ${vs.healthCheck.type}${vs.healthCheck.port ? " :" + vs.healthCheck.port : ""}`);
    }
  }
  lines.push("", "OUTPUTS");
  for (const [k, v] of Object.entries(p.outputs)) if (k !== "proxyConfig") lines.push(`  ${k} = ${show(v)}`);
  lines.push("", "PROXY CONFIG (config/config.json in the artifact bucket; the VM binds admin to its own internal address)");
  lines.push(p.proxyConfig.trimEnd());
  return lines.join("\n") + "\n";
}

function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, "Pulumi.yaml")) && existsSync(path.join(dir, "package.json"))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error("cannot find the package root (Pulumi.yaml)");
}
