/** Pulumi program entry (Pulumi.yaml → main: stacks/). One load balancer per stack; see program.ts. */
import { deployFromConfig } from "./program";

const out = deployFromConfig();
export const vipAddress = out.vipAddress;
export const publicVip = out.publicVip;
export const instanceIds = out.instanceIds;
export const securityGroupIds = out.securityGroupIds;
export const imageHash = out.imageHash;
export const proxyConfig = out.proxyConfig;
export const adminUrl = out.adminUrl;
export const adminUrls = out.adminUrls;
