/**
 * The runtime config: the contract between the control plane (render, the Pulumi component) and the data
 * plane (the proxy). Every field name here is relied on by tools and users: extend, never rename.
 *
 * Shape checks live here (zod); rules that span fields (duplicates, listener clashes, TLS pairs) live in
 * validate.ts so that every error can name the field path and the fix.
 */
import { z } from "zod";
import { isIP } from "node:net";

export const CONFIG_VERSION = 1 as const;

const ipAddress = z
  .string()
  .refine((s) => isIP(s) !== 0, { message: "not an IP address: give a dotted IPv4 or an IPv6 address" });

export const port = z
  .number()
  .int({ message: "a port is a whole number" })
  .min(1, { message: "a port is between 1 and 65535" })
  .max(65535, { message: "a port is between 1 and 65535" });

export const TlsFilesSchema = z
  .object({
    certFile: z.string().min(1).describe("Path to the PEM certificate chain (leaf first)."),
    keyFile: z.string().min(1).describe("Path to the PEM private key that belongs to certFile."),
  })
  .strict();

export const ListenerSchema = z
  .object({
    address: ipAddress.describe("The VIP address this listener binds."),
    port: port.describe("The client-facing port."),
    tls: TlsFilesSchema.optional().describe("HTTP VIPs only: terminate TLS here with this certificate and key."),
    redirectToHttpsPort: port
      .optional()
      .describe("HTTP VIPs only, plain listeners: answer every request with a 301 to https on this port."),
  })
  .strict();

export const RealServerSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, {
        message: "a server name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
      })
      .describe("Unique within the VIP; used in logs, metrics and the admin API."),
    address: ipAddress.describe("The real server's address."),
    port: port.optional().describe("Omitted: the port the client hit. Set: port translation to this port."),
    weight: z
      .number()
      .int()
      .min(0, { message: "weight is between 0 and 256" })
      .max(256, { message: "weight is between 0 and 256" })
      .default(100)
      .describe("Relative share of new clients; 0 takes no new clients."),
  })
  .strict();

export const PersistenceSchema = z
  .object({
    type: z.enum(["source-ip", "none"]).default("source-ip").describe("source-ip: a client address keeps its real server across all ports of the VIP."),
    timeoutSeconds: z
      .number()
      .min(1, { message: "persistence timeout is between 1 s and 7 days (604800 s)" })
      .max(604800, { message: "persistence timeout is between 1 s and 7 days (604800 s)" })
      .default(1800)
      .describe("An idle client's entry expires after this long (the appliance's default is 30 min)."),
  })
  .strict();

export const HealthCheckSchema = z
  .object({
    type: z.enum(["https-get", "http-get", "connect"]).describe("https-get/http-get: GET path, 200-399 is up. connect: a TCP connect to the port."),
    port: port.optional().describe("Omitted: the real server's own port (its translated port, else the VIP's first port)."),
    path: z.string().startsWith("/", { message: "a health-check path starts with '/'" }).default("/admin/startup").describe("GET path of http(s) checks: CTERA's documented probe."),
    host: z
      .string()
      .min(1)
      .optional()
      .describe("Host header and TLS SNI the check sends (CTERA's example: global.<dns-suffix>); omitted: the server's address."),
    intervalMs: z
      .number()
      .int()
      .min(100, { message: "health-check interval is at least 100 ms" })
      .default(4000)
      .describe("Time between checks of one server."),
    timeoutMs: z.number().int().min(50).optional().describe("Omitted: the smaller of 2 s and half the interval."),
    rise: z.number().int().min(1, { message: "rise is at least 1" }).default(2).describe("Consecutive passes that bring a DOWN server UP."),
    fall: z.number().int().min(1, { message: "fall is at least 1" }).default(2).describe("Consecutive failures that take an UP server DOWN."),
    verifyTls: z.boolean().default(false).describe("Verify the server certificate (off: Portal servers usually carry the public name's certificate)."),
  })
  .strict();

export const TimeoutsSchema = z
  .object({
    connectMs: z.number().int().min(1).default(4000).describe("Connect to a real server."),
    clientIdleSeconds: z.number().min(1).default(43200).describe("Idle client connection (TCP VIPs: CTTP sessions live for hours)."),
    serverIdleSeconds: z.number().min(1).default(43200).describe("Idle server connection."),
    httpRequestMs: z.number().int().min(100).default(5000).describe("HTTP VIPs: the whole request head must arrive within this."),
    httpKeepAliveMs: z.number().int().min(100).default(60000).describe("HTTP VIPs: idle time between requests on a client connection."),
    queueMs: z.number().int().min(0).default(5000).describe("How long a connection may wait for a free slot when maxConnections is reached."),
  })
  .strict();

export const HttpOptionsSchema = z
  .object({
    hstsMaxAgeSeconds: z
      .number()
      .int()
      .min(0)
      .nullable()
      .default(31536000)
      .describe("Strict-Transport-Security max-age on TLS listeners; null turns HSTS off."),
    secureCookies: z
      .array(z.string().min(1))
      .default(["JSESSIONID"])
      .describe("Set-Cookie names that gain Secure and HttpOnly on TLS listeners when missing."),
    maxHeaderBytes: z.number().int().min(1024).max(1048576).default(32768).describe("Largest request header section; larger gets 431."),
  })
  .strict();

export const VirtualServiceSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: "a VIP name is 1-64 letters, digits, '.', '_' or '-'" })
      .describe("The VIP's name (the guide's names in the presets); unique."),
    mode: z.enum(["tcp", "http"]).describe("tcp: bytes pass through (TLS too). http: HTTP/1.1 proxy, TLS may end here."),
    listeners: z.array(ListenerSchema).min(1, { message: "a VIP needs at least one listener" }).describe("Every address:port clients connect to; persistence spans them all."),
    realServers: z.array(RealServerSchema).describe("The Portal servers."),
    balance: z.enum(["leastconn", "roundrobin"]).default("leastconn").describe("How a new client (no persistence entry) is placed; leastconn is weight-aware."),
    persistence: PersistenceSchema.prefault({}).describe("Source-IP persistence across all ports of the VIP."),
    healthCheck: HealthCheckSchema.describe("Active check, one stream per real server."),
    clientIp: z.enum(["none", "x-forwarded-for", "proxy-v2"]).default("none").describe("How real servers learn the client address: X-Forwarded-For (http) or a PROXY v2 header (tcp)."),
    sourceAddress: ipAddress.nullable().default(null).describe("Local address to connect to real servers from; null: the route's own."),
    maxConnections: z.number().int().min(1).default(40000).describe("Open client connections per VIP; more wait in a queue up to timeouts.queueMs."),
    retries: z.number().int().min(0).max(10).default(3).describe("Other servers tried after a refused or timed-out connect."),
    shutdownSessionsOnDown: z.boolean().default(true).describe("Close a server's open connections when it goes DOWN."),
    timeouts: TimeoutsSchema.prefault({}).describe("Connection and request timeouts."),
    http: HttpOptionsSchema.prefault({}).describe("HTTP VIPs: response hardening and limits."),
  })
  .strict();

export const AdminSchema = z
  .object({
    address: ipAddress.default("127.0.0.1").describe("Bind the admin API to a private address only."),
    port: port.default(9090).describe("Admin API and status page port."),
    token: z
      .string()
      .min(16, { message: "an admin token is at least 16 characters" })
      .nullable()
      .default(null)
      .describe("Bearer token for the admin actions; null: the API is read-only."),
  })
  .strict();

export const HighAvailabilitySchema = z
  .object({
    peer: z
      .object({
        address: ipAddress.describe("The other node's internal address, where its admin API listens."),
        port: port.default(9090).describe("The other node's admin API port."),
      })
      .strict()
      .describe("The other load balancer of the pair: persistence entries are pushed to its admin API (POST /api/persistence/merge, bearer admin.token)."),
    syncIntervalMs: z
      .number()
      .int()
      .min(100, { message: "the sync interval is between 100 ms and 60000 ms" })
      .max(60000, { message: "the sync interval is between 100 ms and 60000 ms" })
      .default(1000)
      .describe("How often changed persistence entries are pushed to the peer (one request at a time)."),
    maxEntriesPerMessage: z
      .number()
      .int()
      .min(1, { message: "maxEntriesPerMessage is between 1 and 20000" })
      .max(20000, { message: "maxEntriesPerMessage is between 1 and 20000 (a message stays under 1 MiB)" })
      .default(5000)
      .describe("Entries per push; more wait for the next push."),
  })
  .strict();

export const RuntimeConfigSchema = z
  .object({
    version: z.literal(CONFIG_VERSION).describe("Config format version."),
    virtualServices: z.array(VirtualServiceSchema).min(1, { message: "at least one virtual service is needed" }).describe("The VIPs."),
    admin: AdminSchema.prefault({}).describe("Admin API, metrics and status page."),
    workers: z.number().int().min(1).max(64).nullable().default(null).describe("Serving processes: the primary plus workers-1 forked ones; null: one per CPU."),
    drainTimeoutMs: z.number().int().min(0).default(30000).describe("SIGTERM: how long open connections may finish."),
    highAvailability: HighAvailabilitySchema.optional().describe(
      "HA pair: share persistence entries with the peer load balancer, so clients re-pinned after a Portal server failure keep their server across a failover. Omitted: no sync.",
    ),
  })
  .strict();

export type RuntimeConfig = z.output<typeof RuntimeConfigSchema>;
export type RuntimeConfigInput = z.input<typeof RuntimeConfigSchema>;
export type VirtualService = z.output<typeof VirtualServiceSchema>;
export type Listener = z.output<typeof ListenerSchema>;
export type RealServer = z.output<typeof RealServerSchema>;
export type HealthCheck = z.output<typeof HealthCheckSchema>;
export type Persistence = z.output<typeof PersistenceSchema>;
export type Timeouts = z.output<typeof TimeoutsSchema>;
export type HttpOptions = z.output<typeof HttpOptionsSchema>;
export type AdminConfig = z.output<typeof AdminSchema>;
export type TlsFiles = z.output<typeof TlsFilesSchema>;
export type HighAvailabilityConfig = z.output<typeof HighAvailabilitySchema>;
