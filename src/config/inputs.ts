/**
 * The typed inputs: what a user states (a design, a VIP, the Portal servers, overrides); render() turns
 * them into the runtime config. The Pulumi component's args embed the same fields, so a stack and the CLI
 * describe a load balancer in one vocabulary.
 */
import { z } from "zod";
import { isIP } from "node:net";
import {
  AdminSchema,
  HealthCheckSchema,
  HttpOptionsSchema,
  PersistenceSchema,
  TimeoutsSchema,
  TlsFilesSchema,
  port,
} from "./schema";

export const DESIGNS = ["ssl-on-portal", "ssl-on-lb"] as const;
export type Design = (typeof DESIGNS)[number];

const ipAddress = z
  .string()
  .refine((s) => isIP(s) !== 0, { message: "not an IP address: give a dotted IPv4 or an IPv6 address" });

/** An IPv4 or IPv6 CIDR block such as 203.0.113.0/24 (security-group sources: clientCidrs, adminCidrs). */
export const cidrBlock = z.string().refine(isCidr, {
  message: "not a CIDR block: write an address and a prefix length, e.g. 203.0.113.0/24 or 0.0.0.0/0",
});

export function isCidr(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return false;
  const family = isIP(m[1]);
  const bits = Number(m[2]);
  return family !== 0 && bits <= (family === 4 ? 32 : 128);
}

export const RealServerInputSchema = z
  .object({
    name: z.string().optional().describe("Omitted: portal-1, portal-2, ... in the order given."),
    address: ipAddress,
    weight: z.number().int().min(0).max(256).optional(),
  })
  .strict();

/** Per-VIP overrides of a preset; every field optional, every preset default reachable. */
export const VirtualServiceOverrideSchema = z
  .object({
    ports: z.array(port).min(1).optional().describe("TCP VIPs: the passthrough ports. HTTP VIPs: the plain-HTTP ports."),
    tlsPorts: z.array(port).optional().describe("HTTP VIPs: the ports where TLS ends on the load balancer."),
    serverPort: port.optional().describe("Port translation: the real servers' port for every listener of this VIP."),
    redirectToHttps: z.boolean().optional().describe("HTTP VIPs: plain ports answer 301 to the first TLS port (default true)."),
    balance: z.enum(["leastconn", "roundrobin"]).optional(),
    persistence: PersistenceSchema.partial().optional(),
    healthCheck: HealthCheckSchema.partial().optional(),
    clientIp: z.enum(["none", "x-forwarded-for", "proxy-v2"]).optional(),
    maxConnections: z.number().int().min(1).optional(),
    retries: z.number().int().min(0).max(10).optional(),
    timeouts: TimeoutsSchema.partial().optional(),
    http: HttpOptionsSchema.partial().optional(),
  })
  .strict();
export type VirtualServiceOverride = z.input<typeof VirtualServiceOverrideSchema>;

/** The part of the inputs that the CLI and the Pulumi component share. */
export const LoadBalancerSettingsShape = {
  design: z.enum(DESIGNS, { message: "design is 'ssl-on-portal' or 'ssl-on-lb'" }),
  realServers: z
    .array(z.union([ipAddress, RealServerInputSchema]))
    .min(1, { message: "at least one real server is needed: add a Portal server's address" }),
  sourceAddress: ipAddress.optional().describe("What real servers see as the client address (default: the LB's own)."),
  balance: z.enum(["leastconn", "roundrobin"]).optional(),
  persistence: PersistenceSchema.partial().optional(),
  healthCheck: HealthCheckSchema.partial().optional().describe("Applies to every VIP (per-VIP overrides win)."),
  timeouts: TimeoutsSchema.partial().optional(),
  http: HttpOptionsSchema.partial().optional(),
  virtualServices: z
    .record(z.string(), VirtualServiceOverrideSchema)
    .optional()
    .describe("Per-VIP overrides keyed by the preset's VIP name (e.g. CTERA_Portal_CTTP)."),
  admin: AdminSchema.partial().optional(),
  workers: z.number().int().min(1).max(64).nullable().optional(),
  drainTimeoutMs: z.number().int().min(0).optional(),
};

export const RenderInputsSchema = z
  .object({
    ...LoadBalancerSettingsShape,
    vip: ipAddress.describe("The virtual IP every listener binds."),
    tls: TlsFilesSchema.optional().describe("ssl-on-lb: the certificate and key files the proxy reads."),
  })
  .strict();

export type RenderInputs = z.input<typeof RenderInputsSchema>;
export type ParsedRenderInputs = z.output<typeof RenderInputsSchema>;
