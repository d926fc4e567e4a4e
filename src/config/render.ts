/**
 * render(inputs) → runtime config. The only place a design turns into VIPs: the CLI, the Pulumi component,
 * the demo and the tests all call this, so the proxy, the security groups and the docs cannot drift apart.
 */
import { ConfigError, ConfigIssue, fromZodIssues } from "./errors";
import { ParsedRenderInputs, RenderInputs, RenderInputsSchema, VirtualServiceOverride } from "./inputs";
import { PRESETS, PresetVirtualService, designNeedsTls } from "./presets";
import { CONFIG_VERSION, RuntimeConfig, RuntimeConfigInput } from "./schema";
import { ValidateOptions, validateRuntimeConfig } from "./validate";

export function render(inputs: RenderInputs, opts: ValidateOptions = {}): RuntimeConfig {
  const parsed = RenderInputsSchema.safeParse(inputs);
  if (!parsed.success) throw new ConfigError(fromZodIssues(parsed.error.issues), "inputs");
  const doc = buildRuntimeDocument(parsed.data);
  return validateRuntimeConfig(doc, opts);
}

/** Builds the (not yet validated) runtime document; input-level problems are thrown with input paths. */
export function buildRuntimeDocument(inp: ParsedRenderInputs): RuntimeConfigInput {
  const issues = inputIssues(inp);
  if (issues.length) throw new ConfigError(issues, "inputs");
  const servers = normalizeRealServers(inp.realServers);
  const presets = PRESETS[inp.design];
  return {
    version: CONFIG_VERSION,
    virtualServices: presets.map((p) => buildVirtualService(p, inp, inp.virtualServices?.[p.name] ?? {}, servers)),
    admin: { ...inp.admin },
    ...(inp.workers !== undefined ? { workers: inp.workers } : {}),
    ...(inp.drainTimeoutMs !== undefined ? { drainTimeoutMs: inp.drainTimeoutMs } : {}),
  };
}

function buildVirtualService(
  p: PresetVirtualService,
  inp: ParsedRenderInputs,
  o: VirtualServiceOverride,
  servers: { name: string; address: string; weight?: number }[],
): RuntimeConfigInput["virtualServices"][number] {
  const ports = o.ports ?? p.ports;
  const tlsPorts = o.tlsPorts ?? p.tlsPorts;
  const redirect = (o.redirectToHttps ?? p.redirectToHttps) && tlsPorts.length > 0;
  const serverPort = o.serverPort ?? p.serverPort;
  const listeners = [
    ...ports.map((port) => ({ address: inp.vip, port, ...(redirect ? { redirectToHttpsPort: tlsPorts[0] } : {}) })),
    ...tlsPorts.map((port) => ({ address: inp.vip, port, tls: inp.tls ? { ...inp.tls } : undefined })),
  ];
  return {
    name: p.name,
    mode: p.mode,
    listeners,
    realServers: servers.map((s) => ({ ...s, ...(serverPort !== undefined ? { port: serverPort } : {}) })),
    balance: o.balance ?? inp.balance,
    persistence: { ...inp.persistence, ...o.persistence },
    healthCheck: { ...p.healthCheck, ...inp.healthCheck, ...o.healthCheck },
    clientIp: o.clientIp ?? p.clientIp,
    sourceAddress: inp.sourceAddress ?? null,
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    ...(o.retries !== undefined ? { retries: o.retries } : {}),
    timeouts: { ...inp.timeouts, ...o.timeouts },
    http: { ...inp.http, ...o.http },
  };
}

/** Addresses may be given bare; names default to portal-1, portal-2, ... in the order given. */
export function normalizeRealServers(
  list: ParsedRenderInputs["realServers"],
): { name: string; address: string; weight?: number }[] {
  return list.map((s, i) => {
    const o = typeof s === "string" ? { address: s } : s;
    return { name: o.name ?? `portal-${i + 1}`, address: o.address, ...(o.weight !== undefined ? { weight: o.weight } : {}) };
  });
}

function inputIssues(inp: ParsedRenderInputs): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (designNeedsTls(inp.design) && !inp.tls) {
    issues.push({
      path: "tls",
      message: `${inp.design} terminates TLS on the load balancer: give the certificate and key (--tls-cert/--tls-key, or tls.certFile/tls.keyFile)`,
    });
  }
  const known = PRESETS[inp.design].map((p) => p.name);
  for (const name of Object.keys(inp.virtualServices ?? {})) {
    if (!known.includes(name)) {
      issues.push({ path: `virtualServices.${name}`, message: `${inp.design} has no VIP '${name}': use one of ${known.join(", ")}` });
    }
  }
  const seenNames = new Map<string, number>();
  const seenAddrs = new Map<string, number>();
  normalizeRealServers(inp.realServers).forEach((s, i) => {
    const n = seenNames.get(s.name);
    if (n !== undefined) issues.push({ path: `realServers[${i}].name`, message: `duplicate real-server name '${s.name}' (also realServers[${n}]): give each server its own name` });
    else seenNames.set(s.name, i);
    const a = seenAddrs.get(s.address);
    if (a !== undefined) issues.push({ path: `realServers[${i}].address`, message: `duplicate real-server address ${s.address} (also realServers[${a}]): list each Portal server once` });
    else seenAddrs.set(s.address, i);
  });
  return issues;
}
