/** The Pulumi component (loads @pulumi/*: import it only where a Pulumi program runs). */
export { CteraPortalLoadBalancer, COMPONENT_TYPE, CONFIG_OBJECT_KEY, DEPLOYMENT_TAG, TLS_CERT_PATH, TLS_KEY_PATH, renderConfig, isGraviton } from "./loadBalancer";
export type { CteraPortalLoadBalancerArgs, NetworkArgs, TlsArgs } from "./args";
export { ComponentArgsSchema, parseComponentArgs } from "./args";
export { deriveTraffic, hostCidr } from "./traffic";
export type { TrafficModel, ServerFlow } from "./traffic";
export { instancePolicy, assumeRolePolicy } from "./policy";
export type { PolicyDocument, PolicyStatement } from "./policy";
export { renderUserData } from "./userdata";
export type { BootParams } from "./userdata";
