/** Shared fixtures for the component tests: documentation addresses only (data, never a connection target). */
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CteraPortalLoadBalancerArgs } from "../../src/component";
import type { PlannedResource } from "../../src/component/offline";

export const PORTALS = ["10.0.1.11", "10.0.1.12", "10.0.1.13"];

export function oneArm(extra: Partial<CteraPortalLoadBalancerArgs> = {}): CteraPortalLoadBalancerArgs {
  return {
    design: "ssl-on-portal",
    network: { layout: "one-arm", vpcId: "vpc-0a1b2c3d4e5f60718", subnetId: "subnet-0aaaaaaaaaaaaaaa1" },
    realServers: PORTALS,
    clientCidrs: ["203.0.113.0/24"],
    ...extra,
  } as CteraPortalLoadBalancerArgs;
}

export function twoArm(extra: Partial<CteraPortalLoadBalancerArgs> = {}): CteraPortalLoadBalancerArgs {
  return {
    design: "ssl-on-portal",
    network: {
      layout: "two-arm",
      vpcId: "vpc-0a1b2c3d4e5f60718",
      internalSubnetId: "subnet-0aaaaaaaaaaaaaaa1",
      externalSubnetId: "subnet-0bbbbbbbbbbbbbbb2",
    },
    realServers: PORTALS,
    clientCidrs: ["203.0.113.0/24"],
    ...extra,
  } as CteraPortalLoadBalancerArgs;
}

let pair: { cert: string; key: string } | undefined;
/** A self-signed certificate and its key (openssl), made once per test file. */
export function tlsPair(): { cert: string; key: string } {
  if (pair) return pair;
  const dir = mkdtempSync(join(tmpdir(), "ctera-lb-tls-"));
  try {
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=portal.example.com", "-days", "2",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
    pair = { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return pair;
}
void generateKeyPairSync; void X509Certificate; void writeFileSync;

export const of = (rs: PlannedResource[], type: string) => rs.filter((r) => r.type === type);
export const one = (rs: PlannedResource[], type: string, name?: string) => {
  const found = rs.filter((r) => r.type === type && (name === undefined || r.name === name));
  if (found.length !== 1) throw new Error(`expected one ${type} ${name ?? ""}, found ${found.map((r) => r.name).join(", ") || "none"}`);
  return found[0];
};
