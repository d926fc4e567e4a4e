/**
 * The component's arguments: a contract users' stacks depend on. Everything a stack says about the load
 * balancer itself (design, real servers, overrides) is the shared typed model of src/config
 * (`LoadBalancerSettingsShape`), so a stack and `ctera-lb render` speak one vocabulary; only the cloud
 * placement (network, CIDRs, instance, TLS secret) is added here.
 *
 * Args are plain data or Pulumi Inputs of plain data, so a component provider can later infer a schema.
 * Fields that decide which resources exist (design, layout, real servers, CIDRs, overrides) must be plain
 * values: a security-group rule per port and CIDR is created at construction, not inside an apply.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { isIP } from "node:net";
import { ConfigError, ConfigIssue, LoadBalancerSettingsShape, cidrBlock, fromZodIssues } from "../config";

/** A plain string, or a Pulumi Output that will carry one (checked when it is known). */
const stringInput = (what: string, check?: (s: string) => boolean, hint?: string) =>
  z.union([
    z
      .string()
      .min(1, { message: `${what} is empty` })
      .refine((s) => (check ? check(s) : true), { message: hint ?? `not a valid ${what}` }),
    z.custom<pulumi.Output<string>>((v) => pulumi.Output.isInstance(v), { message: `${what}: a string or a pulumi Output is expected` }),
  ]);

const vpcId = stringInput("VPC id", (s) => /^vpc-[0-9a-f]+$/.test(s), "not a VPC id: expected vpc-<hex>, e.g. vpc-0123456789abcdef0");
const subnetId = stringInput("subnet id", (s) => /^subnet-[0-9a-f]+$/.test(s), "not a subnet id: expected subnet-<hex>, e.g. subnet-0123456789abcdef0");

export const OneArmNetworkSchema = z
  .object({
    layout: z.literal("one-arm"),
    vpcId,
    subnetId: subnetId.describe("The one subnet: VIP, health checks and real-server traffic share eth0."),
  })
  .strict();

export const TwoArmNetworkSchema = z
  .object({
    layout: z.literal("two-arm"),
    vpcId,
    internalSubnetId: subnetId.describe("eth0 (device index 0): toward the Portal servers; admin API."),
    externalSubnetId: subnetId.describe("eth1 (device index 1): where clients arrive; the VIP lives here."),
  })
  .strict();

export const NetworkSchema = z.discriminatedUnion("layout", [OneArmNetworkSchema, TwoArmNetworkSchema], {
  message: "network.layout is 'one-arm' or 'two-arm'",
});

const pem = z.union([
  z.string().min(1),
  z.custom<pulumi.Output<string>>((v) => pulumi.Output.isInstance(v), { message: "a PEM string or a pulumi secret is expected" }),
]);

export const TlsArgsSchema = z.union([
  z
    .object({
      certificate: pem.describe("PEM certificate chain, leaf first."),
      privateKey: pem.describe("PEM private key (pass a secret: pulumi.secret(...) or `pulumi config set --secret`)."),
    })
    .strict(),
  z
    .object({
      secretArn: stringInput("secret ARN", (s) => s.startsWith("arn:"), "not an ARN: expected arn:aws:secretsmanager:<region>:<account>:secret:<name>").describe(
        "An existing Secrets Manager secret whose value is JSON {\"certificate\": PEM, \"privateKey\": PEM}.",
      ),
    })
    .strict(),
]);

const ipv4 = z.string().refine((s) => isIP(s) === 4, { message: "not an IPv4 address (the VIP is a private IPv4 address of the client subnet)" });

export const ComponentArgsSchema = z
  .object({
    ...LoadBalancerSettingsShape,
    network: NetworkSchema,
    clientCidrs: z.array(cidrBlock).min(1, { message: "at least one client CIDR is needed, e.g. 0.0.0.0/0 or your offices' ranges" }),
    adminCidrs: z.array(cidrBlock).optional().describe("Who may reach the admin API; omitted: nobody (closed)."),
    awsApiCidrs: z
      .array(cidrBlock)
      .optional()
      .describe("HTTPS egress for SSM, Secrets Manager and EC2 API calls; omitted: the VPC's CIDR (VPC interface endpoints)."),
    instanceType: stringInput("instance type", (s) => /^[a-z0-9-]+\.[a-z0-9]+$/.test(s), "not an instance type: e.g. t3.small or m7g.large").optional(),
    ami: stringInput("AMI id", (s) => /^ami-[0-9a-f]+$/.test(s), "not an AMI id: expected ami-<hex>").optional(),
    tls: TlsArgsSchema.optional(),
    publicVip: z.boolean().optional().describe("Associate an Elastic IP with the VIP."),
    vipAddress: ipv4.optional().describe("A fixed private IPv4 for the VIP in the client subnet; omitted: AWS picks one."),
    tags: z.record(z.string(), z.string()).optional(),
    highAvailability: z
      .union([
        z.boolean(),
        z
          .object({
            virtualRouterId: z.number().int().min(1).max(255).optional().describe("VRRP virtual_router_id; omitted: derived from the deployment name."),
            advertIntSeconds: z.number().int().min(1).max(255).optional().describe("VRRP advert interval (whole seconds, default 1)."),
            preempt: z.boolean().optional().describe("Default false: a node that comes back stays BACKUP."),
          })
          .strict(),
      ])
      .optional()
      .describe("Two load balancer VMs in the same subnets with a floating VIP (keepalived, unicast VRRP)."),
  })
  .strict();

type Settings = z.input<z.ZodObject<typeof LoadBalancerSettingsShape>>;

export type NetworkArgs =
  | { layout: "one-arm"; vpcId: pulumi.Input<string>; subnetId: pulumi.Input<string> }
  | { layout: "two-arm"; vpcId: pulumi.Input<string>; internalSubnetId: pulumi.Input<string>; externalSubnetId: pulumi.Input<string> };

export type TlsArgs =
  | { certificate: pulumi.Input<string>; privateKey: pulumi.Input<string> }
  | { secretArn: pulumi.Input<string> };

/** The arguments of `new CteraPortalLoadBalancer(name, args, opts)`. */
export interface CteraPortalLoadBalancerArgs extends Settings {
  network: NetworkArgs;
  /** Client source ranges allowed on the VIP ports. */
  clientCidrs: string[];
  /** Ranges allowed on the admin API port; omitted: closed. */
  adminCidrs?: string[];
  /** HTTPS (443) egress for SSM / Secrets Manager / EC2 endpoints; omitted: the VPC CIDR (interface endpoints). */
  awsApiCidrs?: string[];
  /** Default t3.small. */
  instanceType?: pulumi.Input<string>;
  /** Omitted: the newest Amazon Linux 2023 for the instance type's architecture, pinned after the first up. */
  ami?: pulumi.Input<string>;
  /** ssl-on-lb: the certificate and key (PEM, secrets) or an existing secret. */
  tls?: TlsArgs;
  /** Associate an Elastic IP with the VIP. */
  publicVip?: boolean;
  /** Fixed private VIP; omitted: AWS assigns one in the client subnet. */
  vipAddress?: string;
  tags?: Record<string, string>;
  /** Two VMs (same subnets) and a floating VIP moved by keepalived; true or VRRP settings. Default off. */
  highAvailability?: boolean | { virtualRouterId?: number; advertIntSeconds?: number; preempt?: boolean };
}

export type ParsedArgs = z.output<typeof ComponentArgsSchema>;

/**
 * Validates the args before any resource exists. Every problem is reported with its field path, as
 * `ctera-lb render` does, e.g. `network.externalSubnetId: required ...`.
 */
export function parseComponentArgs(name: string, args: unknown): ParsedArgs {
  const what = `CteraPortalLoadBalancer '${name}' args`;
  if (args === null || typeof args !== "object") throw new ConfigError([{ path: "", message: "args are required" }], what);
  const parsed = ComponentArgsSchema.safeParse(args);
  if (!parsed.success) throw new ConfigError(fromZodIssues(parsed.error.issues).map((i) => explain(i, args)), what);
  const issues: ConfigIssue[] = [];
  const a = parsed.data;
  if (a.design === "ssl-on-lb" && !a.tls) {
    issues.push({
      path: "tls",
      message: "ssl-on-lb terminates TLS on the load balancer: give tls.certificate and tls.privateKey (PEM, as secrets) or tls.secretArn",
    });
  }
  if (a.design === "ssl-on-portal" && a.tls) {
    issues.push({ path: "tls", message: "ssl-on-portal passes TLS through to the Portal servers: remove tls, or use design ssl-on-lb" });
  }
  if (a.network.layout === "two-arm" && typeof a.network.internalSubnetId === "string" && a.network.internalSubnetId === a.network.externalSubnetId) {
    issues.push({ path: "network.externalSubnetId", message: "two-arm needs two different subnets (internal toward the Portal servers, external for clients); with one subnet use layout one-arm" });
  }
  if (a.publicVip && a.vipAddress) {
    // The Elastic IP is associated once with the reservation ENI that holds an AWS-assigned VIP; a fixed VIP
    // has no holder before the VM claims it at boot, so there is nothing to associate the EIP with yet.
    issues.push({ path: "publicVip", message: "publicVip works with an AWS-assigned VIP: remove vipAddress, or associate your own Elastic IP with the fixed VIP" });
  }
  if (issues.length) throw new ConfigError(issues, what);
  return a;
}

/** zod's generic wording → what to do, for the mistakes users make most. */
function explain(i: ConfigIssue, args: object): ConfigIssue {
  const network = (args as { network?: Record<string, unknown> }).network;
  const missing = (key: string) => !!network && typeof network === "object" && network[key] === undefined;
  const required: Record<string, string> = {
    "network.externalSubnetId": "required for layout two-arm: the subnet where clients arrive (eth1, device index 1); or use layout one-arm with subnetId",
    "network.internalSubnetId": "required for layout two-arm: the subnet toward the Portal servers (eth0, device index 0)",
    "network.subnetId": "required for layout one-arm: the one subnet of the load balancer (eth0)",
    "network.vpcId": "required: the VPC of the load balancer's subnets",
  };
  if (required[i.path] && missing(i.path.slice("network.".length))) return { path: i.path, message: required[i.path] };
  return i;
}
