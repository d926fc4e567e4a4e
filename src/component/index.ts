/**
 * The Pulumi component and its helpers. Loading @pulumi/* takes seconds, so `require("ctera-portal-lb")`
 * stays light: the component class and the arg schema are loaded on first use (getters below); the
 * constants, traffic model, policy documents and user-data renderer are plain code.
 */
import type * as LoadBalancerModule from "./loadBalancer";
import type * as ArgsModule from "./args";

export * from "./constants";
export { deriveTraffic, hostCidr } from "./traffic";
export type { TrafficModel, ServerFlow } from "./traffic";
export { instancePolicy, assumeRolePolicy } from "./policy";
export type { PolicyDocument, PolicyStatement } from "./policy";
export { renderUserData } from "./userdata";
export type { BootParams } from "./userdata";
export type { CteraPortalLoadBalancerArgs, NetworkArgs, TlsArgs, ParsedArgs } from "./args";

export type CteraPortalLoadBalancer = LoadBalancerModule.CteraPortalLoadBalancer;
export declare const CteraPortalLoadBalancer: typeof LoadBalancerModule.CteraPortalLoadBalancer;
export declare const renderConfig: typeof LoadBalancerModule.renderConfig;
export declare const ComponentArgsSchema: typeof ArgsModule.ComponentArgsSchema;
export declare const parseComponentArgs: typeof ArgsModule.parseComponentArgs;

const lazy: Record<string, () => unknown> = {
  CteraPortalLoadBalancer: () => (require("./loadBalancer") as typeof LoadBalancerModule).CteraPortalLoadBalancer,
  renderConfig: () => (require("./loadBalancer") as typeof LoadBalancerModule).renderConfig,
  ComponentArgsSchema: () => (require("./args") as typeof ArgsModule).ComponentArgsSchema,
  parseComponentArgs: () => (require("./args") as typeof ArgsModule).parseComponentArgs,
};
for (const [name, load] of Object.entries(lazy)) {
  Object.defineProperty(exports, name, { enumerable: true, configurable: false, get: load });
}
