/**
 * Runs a Pulumi program under Pulumi's mocks: no Pulumi CLI, no cloud account. Used by `ctera-lb plan` and
 * the component tests. The mocks answer like AWS would in shape (ids, ARNs, addresses from the
 * documentation ranges); `buildImage` runs scripts/build-image for real so the plan shows the true hash.
 */
import { execFileSync } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";

export interface PlannedResource {
  /** Pulumi type token, e.g. aws:ec2/instance:Instance. */
  type: string;
  name: string;
  /** The inputs the program gave (secrets shown as [secret]). */
  inputs: Record<string, unknown>;
  id: string;
  /** Resource options as the engine would receive them (read from the registration request). */
  options: RegisteredOptions;
}

export interface RegisteredOptions {
  /** Parent URN ("" for none). */
  parent: string;
  ignoreChanges: string[];
  replaceOnChanges: string[];
  /** The value whose change forces a replacement (Pulumi's replacementTrigger option). */
  replacementTrigger?: unknown;
  deleteBeforeReplace: boolean;
  /** Provider reference ("" for the default provider). */
  provider: string;
  /** Names of the resources this one waits for (dependsOn and inputs from other resources). */
  dependsOn: string[];
}

type RegisterRequest = {
  getType(): string;
  getName(): string;
  getParent(): string;
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getDeletebeforereplace(): boolean;
  getProvider(): string;
  getDependenciesList(): string[];
  getReplacementTrigger?(): { toJavaScript(): unknown } | undefined;
};
const seenOptions = new Map<string, RegisteredOptions>();
let patched = false;
/** The mock monitor hands newResource only the inputs; the options come from the request itself. */
function captureOptions(): void {
  if (patched) return;
  patched = true;
  const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks") as { MockMonitor: { prototype: { registerResource: (req: RegisterRequest, cb: unknown) => unknown } } };
  const original = MockMonitor.prototype.registerResource;
  MockMonitor.prototype.registerResource = function (this: unknown, req: RegisterRequest, cb: unknown) {
    const trigger = req.getReplacementTrigger?.();
    seenOptions.set(`${req.getType()}::${req.getName()}`, {
      parent: req.getParent(),
      ignoreChanges: req.getIgnorechangesList(),
      replaceOnChanges: req.getReplaceonchangesList(),
      ...(trigger ? { replacementTrigger: trigger.toJavaScript() } : {}),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      provider: req.getProvider(),
      dependsOn: req.getDependenciesList().map((urn) => urn.slice(urn.lastIndexOf("::") + 2)),
    });
    return original.call(this, req, cb);
  };
}

export interface OfflineOptions {
  project?: string;
  stack?: string;
  /** Flat config as `pulumi config` stores it: "project:key" → string (JSON for objects). */
  config?: Record<string, string>;
  secretKeys?: string[];
  /** The image hash the mocked build reports (tests); omitted with buildImage false: a fixed fake hash. */
  imageHash?: string;
  /** Run scripts/build-image for the command:local:Command (the plan does; tests need not). */
  buildImage?: boolean;
  region?: string;
  /** What the default AMI lookup finds (tests: a newer AMI appeared). */
  latestAmi?: string;
}

export const FAKE_IMAGE_HASH = "0".repeat(63) + "1";

/** AWS-shaped ids for the mocked resources that have a well-known id format (stable per name). */
export function mockAwsId(prefix: "eni" | "eipalloc", name: string): string {
  const { createHash } = require("node:crypto") as typeof import("node:crypto");
  return `${prefix}-${createHash("sha256").update(name).digest("hex").slice(0, 17)}`;
}

let addressCounter = 0;
function nextAddress(subnetId: unknown): string {
  // Documentation-style private data: 10.0.<subnet-derived>.<n>; never a connection target.
  const third = typeof subnetId === "string" ? (Array.from(subnetId).reduce((s, c) => s + c.charCodeAt(0), 0) % 200) + 1 : 1;
  addressCounter += 1;
  return `10.0.${third}.${10 + (addressCounter % 200)}`;
}

/**
 * Sets the mocks, runs `program` (which creates resources), waits until every registration settled, and
 * returns what was registered plus what the program returned (resolved).
 */
export async function runOffline<T>(program: () => T, o: OfflineOptions = {}): Promise<{ resources: PlannedResource[]; result: unknown }> {
  const resources: PlannedResource[] = [];
  const region = o.region ?? "eu-west-1";
  const account = "123456789012";
  addressCounter = 0;
  captureOptions();
  await pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const inputs = args.inputs as Record<string, unknown>;
        const id = args.type === "aws:ec2/networkInterface:NetworkInterface" ? mockAwsId("eni", args.name) : `${args.name}-id`;
        const state: Record<string, unknown> = { ...inputs };
        switch (args.type) {
          case "command:local:Command": {
            let stdout: string;
            if (!String(inputs.create ?? "").includes("scripts/build-image")) {
              stdout = ""; // not the image build (the HA handover steps): nothing runs offline
            } else if (o.buildImage) {
              stdout = execFileSync("node", ["scripts/build-image", "--out", ".ctera-lb-build"], {
                cwd: String(inputs.dir ?? "."),
                encoding: "utf8",
              });
            } else {
              stdout = JSON.stringify({ sha256: o.imageHash ?? FAKE_IMAGE_HASH, file: ".ctera-lb-build/ctera-lb-image.tar.gz", bytes: 0 }) + "\n";
            }
            state.stdout = stdout;
            state.stderr = "";
            break;
          }
          case "aws:s3/bucket:Bucket": {
            const bucket = `${String(inputs.bucketPrefix ?? "")}${args.name}`.slice(0, 63);
            Object.assign(state, { bucket, arn: `arn:aws:s3:::${bucket}` });
            break;
          }
          case "aws:ec2/networkInterface:NetworkInterface": {
            const primary = nextAddress(inputs.subnetId);
            const ips = [primary];
            if (Number(inputs.privateIpsCount ?? 0) > 0) ips.push(nextAddress(inputs.subnetId));
            Object.assign(state, { privateIp: primary, privateIps: ips, macAddress: "02:00:00:00:00:01" });
            break;
          }
          case "aws:ec2/instance:Instance":
            Object.assign(state, { privateIp: nextAddress("instance"), arn: `arn:aws:ec2:${region}:${account}:instance/${id}` });
            break;
          case "aws:ec2/eip:Eip":
            Object.assign(state, { publicIp: "198.51.100.7", allocationId: mockAwsId("eipalloc", args.name) });
            break;
          case "aws:ec2/securityGroup:SecurityGroup":
            Object.assign(state, { arn: `arn:aws:ec2:${region}:${account}:security-group/${id}` });
            break;
          case "aws:secretsmanager/secret:Secret":
            Object.assign(state, { arn: `arn:aws:secretsmanager:${region}:${account}:secret:${args.name}-AbCdEf` });
            break;
          case "aws:iam/role:Role":
            Object.assign(state, { name: `${args.name}`, arn: `arn:aws:iam::${account}:role/${args.name}` });
            break;
          case "aws:iam/instanceProfile:InstanceProfile":
            Object.assign(state, { name: `${args.name}`, arn: `arn:aws:iam::${account}:instance-profile/${args.name}` });
            break;
        }
        const options = seenOptions.get(`${args.type}::${args.name}`) ?? { parent: "", ignoreChanges: [], replaceOnChanges: [], deleteBeforeReplace: false, provider: "", dependsOn: [] };
        resources.push({ type: args.type, name: args.name, inputs, id, options });
        return { id, state };
      },
      call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        const inputs = args.inputs as Record<string, unknown>;
        switch (args.token) {
          case "aws:index/getRegion:getRegion":
            return { id: region, name: region, region, description: region, endpoint: `ec2.${region}.amazonaws.com` };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { id: account, accountId: account, arn: `arn:aws:iam::${account}:user/plan`, userId: "AIDAPLAN" };
          case "aws:index/getPartition:getPartition":
            return { id: "aws", partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws" };
          case "aws:ec2/getVpc:getVpc":
            return { ...inputs, id: inputs.id, cidrBlock: "10.0.0.0/16" };
          case "aws:ec2/getManagedPrefixList:getManagedPrefixList":
            return { ...inputs, id: "pl-6da54004", name: inputs.name };
          case "aws:ec2/getAmi:getAmi":
            return { ...inputs, id: o.latestAmi ?? "ami-0123456789abcdef0", imageId: o.latestAmi ?? "ami-0123456789abcdef0", architecture: "x86_64" };
          default:
            return inputs;
        }
      },
    },
    o.project ?? "ctera-portal-lb",
    o.stack ?? "test",
    false,
  );
  pulumi.runtime.setAllConfig(o.config ?? {}, o.secretKeys ?? []);
  const result = program();
  const resolved = await resolveDeep(result);
  await waitForRegistrations();
  return { resources, result: resolved };
}

async function waitForRegistrations(): Promise<void> {
  // The SDK's own "wait until the RPC queue drained" (what it does before it disconnects).
  const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs?: () => Promise<void> };
  for (let i = 0; i < 3; i++) {
    if (settings.waitForRPCs) await settings.waitForRPCs();
    await new Promise((r) => setImmediate(r));
  }
}

/** The SDK's marker for a secret value as the mocks receive it. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export function isSecret(v: unknown): v is { value: unknown } {
  return !!v && typeof v === "object" && (v as Record<string, unknown>)[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270";
}

/** A copy with every secret replaced by "[secret]" (for printing). */
export function redact(v: unknown): unknown {
  if (isSecret(v)) return "[secret]";
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x)]));
  return v;
}

/** Resolves Outputs (and objects/arrays of them) to plain values. */
export async function resolveDeep(v: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(v)) {
    return new Promise((resolve) => (v as pulumi.Output<unknown>).apply((x) => resolve(resolveDeep(x))));
  }
  if (v instanceof pulumi.Resource) return `[resource]`;
  if (Array.isArray(v)) return Promise.all(v.map(resolveDeep));
  if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = await resolveDeep(x);
    return out;
  }
  return v;
}
