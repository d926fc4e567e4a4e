/**
 * The stack program: reads the stack's config (stacks/Pulumi.<stack>.yaml, secrets set with
 * `pulumi config set --secret`) and creates one CteraPortalLoadBalancer. `ctera-lb plan` runs this same
 * function under Pulumi's mocks.
 */
import * as pulumi from "@pulumi/pulumi";
import { CteraPortalLoadBalancer } from "../src/component";
import type { CteraPortalLoadBalancerArgs } from "../src/component";

/** Config keys that pass straight to the component (objects and arrays as structured YAML). */
const OBJECT_KEYS = [
  "network",
  "realServers",
  "clientCidrs",
  "adminCidrs",
  "awsApiCidrs",
  "tags",
  "persistence",
  "healthCheck",
  "timeouts",
  "http",
  "virtualServices",
  "admin",
  "highAvailability",
] as const;
const STRING_KEYS = ["design", "instanceType", "ami", "vipAddress", "sourceAddress", "balance"] as const;
const NUMBER_KEYS = ["workers", "drainTimeoutMs"] as const;

export function deployFromConfig() {
  const cfg = new pulumi.Config();
  const args: Record<string, unknown> = {};
  for (const k of OBJECT_KEYS) {
    const v = cfg.getObject<unknown>(k);
    if (v !== undefined) args[k] = v;
  }
  for (const k of STRING_KEYS) {
    const v = cfg.get(k);
    if (v !== undefined) args[k] = v;
  }
  for (const k of NUMBER_KEYS) {
    const v = cfg.getNumber(k);
    if (v !== undefined) args[k] = v;
  }
  const publicVip = cfg.getBoolean("publicVip");
  if (publicVip !== undefined) args.publicVip = publicVip;
  // TLS (ssl-on-lb): an existing secret's ARN, or the PEM pair as Pulumi secrets.
  const tlsSecretArn = cfg.get("tlsSecretArn");
  const certificate = cfg.getSecret("tlsCertificate");
  const privateKey = cfg.getSecret("tlsPrivateKey");
  if (tlsSecretArn) args.tls = { secretArn: tlsSecretArn };
  else if (certificate || privateKey) args.tls = { certificate, privateKey };

  const lb = new CteraPortalLoadBalancer(cfg.get("name") ?? "ctera-lb", args as unknown as CteraPortalLoadBalancerArgs);
  return {
    vipAddress: lb.vipAddress,
    publicVip: lb.publicVip,
    instanceIds: lb.instanceIds,
    securityGroupIds: lb.securityGroupIds,
    imageHash: lb.imageHash,
    proxyConfig: lb.proxyConfig,
    adminUrl: lb.adminUrl,
    adminUrls: lb.adminUrls,
  };
}
