/**
 * validateRuntimeConfig: the one gate every runtime config passes — `ctera-lb validate`, render(), the
 * component, and the proxy at start and at every reload. Shape first (zod), then the rules that span fields.
 * Every problem is reported with its field path and the fix; nothing is half-applied.
 */
import { readFileSync } from "node:fs";
import { ConfigError, ConfigIssue, fromZodIssues } from "./errors";
import { RuntimeConfig, RuntimeConfigSchema } from "./schema";
import { checkTlsPair } from "./tls";

export interface ValidateOptions {
  /** Read the TLS files named in the config and check they are PEM and belong together (default true). */
  checkFiles?: boolean;
}

export function validateRuntimeConfig(doc: unknown, opts: ValidateOptions = {}): RuntimeConfig {
  const parsed = RuntimeConfigSchema.safeParse(doc);
  if (!parsed.success) throw new ConfigError(fromZodIssues(parsed.error.issues), "config");
  const issues = crossFieldIssues(parsed.data, opts.checkFiles ?? true);
  if (issues.length) throw new ConfigError(issues, "config");
  return parsed.data;
}

/** The same as validateRuntimeConfig, returning the problems instead of throwing. */
export function listConfigProblems(doc: unknown, opts: ValidateOptions = {}): ConfigIssue[] {
  try {
    validateRuntimeConfig(doc, opts);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
}

function crossFieldIssues(cfg: RuntimeConfig, checkFiles: boolean): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const bound = new Map<string, string>(); // "addr:port" -> path of its first user
  const claim = (address: string, port: number, path: string) => {
    const key = `${address}:${port}`;
    const first = bound.get(key);
    if (first) issues.push({ path, message: `${key} is already used by ${first}: two listeners cannot share one address:port` });
    else bound.set(key, path);
  };
  claim(cfg.admin.address, cfg.admin.port, "admin");
  issues.push(...highAvailabilityIssues(cfg));

  const names = new Set<string>();
  cfg.virtualServices.forEach((vs, v) => {
    const at = `virtualServices[${v}]`;
    if (names.has(vs.name)) issues.push({ path: `${at}.name`, message: `duplicate VIP name '${vs.name}': VIP names are unique` });
    names.add(vs.name);

    if (vs.realServers.length === 0) {
      issues.push({ path: `${at}.realServers`, message: `VIP ${vs.name} has no real servers: add at least one Portal server` });
    }
    const serverNames = new Map<string, number>();
    const serverAddrs = new Map<string, number>();
    vs.realServers.forEach((rs, r) => {
      const prevName = serverNames.get(rs.name);
      if (prevName !== undefined) {
        issues.push({ path: `${at}.realServers[${r}].name`, message: `duplicate real-server name '${rs.name}' (also realServers[${prevName}]): names are unique within a VIP` });
      } else serverNames.set(rs.name, r);
      const addrKey = `${rs.address}:${rs.port ?? "*"}`;
      const prevAddr = serverAddrs.get(addrKey);
      if (prevAddr !== undefined) {
        issues.push({ path: `${at}.realServers[${r}].address`, message: `duplicate real-server address ${rs.address} (also realServers[${prevAddr}]): list each Portal server once` });
      } else serverAddrs.set(addrKey, r);
    });

    vs.listeners.forEach((l, i) => {
      const lp = `${at}.listeners[${i}]`;
      claim(l.address, l.port, lp);
      if (l.tls && vs.mode !== "http") {
        issues.push({ path: `${lp}.tls`, message: `TLS termination needs an http VIP: set mode 'http' on ${vs.name} or remove tls (tcp VIPs pass TLS through)` });
      }
      if (l.redirectToHttpsPort !== undefined) {
        if (vs.mode !== "http") issues.push({ path: `${lp}.redirectToHttpsPort`, message: "redirects need an http VIP: remove redirectToHttpsPort" });
        if (l.tls) issues.push({ path: `${lp}.redirectToHttpsPort`, message: "a TLS listener cannot redirect to https: remove redirectToHttpsPort or tls" });
      }
      if (l.tls && checkFiles) issues.push(...tlsFileIssues(l.tls.certFile, l.tls.keyFile, `${lp}.tls`));
    });

    if (vs.clientIp === "x-forwarded-for" && vs.mode !== "http") {
      issues.push({ path: `${at}.clientIp`, message: "x-forwarded-for needs an http VIP: use 'proxy-v2' for tcp VIPs" });
    }
    if (vs.clientIp === "proxy-v2" && vs.mode !== "tcp") {
      issues.push({ path: `${at}.clientIp`, message: "proxy-v2 is for tcp VIPs: use 'x-forwarded-for' for http VIPs" });
    }
    const hc = vs.healthCheck;
    if (hc.timeoutMs !== undefined && hc.timeoutMs >= hc.intervalMs) {
      issues.push({ path: `${at}.healthCheck.timeoutMs`, message: `the check timeout (${hc.timeoutMs} ms) must be shorter than the interval (${hc.intervalMs} ms)` });
    }
  });
  return issues;
}

/** The persistence sync with the peer: authenticated, reachable, and not pointed at this node itself. */
function highAvailabilityIssues(cfg: RuntimeConfig): ConfigIssue[] {
  const ha = cfg.highAvailability;
  if (!ha) return [];
  const out: ConfigIssue[] = [];
  if (cfg.admin.token === null) {
    out.push({
      path: "admin.token",
      message: "highAvailability pushes persistence entries to the peer with the admin token: set admin.token (at least 16 characters, the same on both nodes)",
    });
  }
  const loopback = (a: string) => a.startsWith("127.") || a === "::1";
  if (loopback(cfg.admin.address) && !loopback(ha.peer.address)) {
    out.push({
      path: "admin.address",
      message: `the admin API listens on ${cfg.admin.address} only, so the peer ${ha.peer.address} cannot push its entries here: bind admin.address to this node's internal address (or 0.0.0.0)`,
    });
  }
  if (ha.peer.address === cfg.admin.address && ha.peer.port === cfg.admin.port) {
    out.push({
      path: "highAvailability.peer.address",
      message: `${ha.peer.address}:${ha.peer.port} is this node's own admin API: give the other node's internal address`,
    });
  }
  return out;
}

function tlsFileIssues(certFile: string, keyFile: string, at: string): ConfigIssue[] {
  const read = (file: string, field: string): string | ConfigIssue => {
    try {
      return readFileSync(file, "utf8");
    } catch (e) {
      return { path: `${at}.${field}`, message: `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give a readable PEM file` };
    }
  };
  const cert = read(certFile, "certFile");
  const key = read(keyFile, "keyFile");
  const out: ConfigIssue[] = [];
  if (typeof cert !== "string") out.push(cert);
  if (typeof key !== "string") out.push(key);
  if (out.length) return out;
  return checkTlsPair(cert as string, key as string).map((p) => ({
    path: `${at}.${p.field === "cert" ? "certFile" : "keyFile"}`,
    message: p.message,
  }));
}
