/** Names and paths the component, the VM's scripts and the tests share (no @pulumi here: cheap to load). */
export const COMPONENT_TYPE = "ctera-portal-lb:index:CteraPortalLoadBalancer";

/** Where the VM's boot script writes the TLS secret; the rendered config names these paths. */
export const TLS_CERT_PATH = "/etc/ctera-lb/tls/cert.pem";
export const TLS_KEY_PATH = "/etc/ctera-lb/tls/key.pem";
/** The config object's key: stable, so a config change never touches the VM's inputs. */
export const CONFIG_OBJECT_KEY = "config/config.json";
/** Tag on every child; the instance role's VIP claim is scoped to ENIs carrying this deployment's value. */
export const DEPLOYMENT_TAG = "ctera-lb:deployment";

/** highAvailability: the node's name (vm-0, vm-1) on its instance; the deploy-side handover finds nodes by it. */
export const HA_NODE_TAG = "ctera-lb:ha-node";
/** Tags a node sets on its own instance (scripts/ha/ec2-publish-state); Pulumi ignores them. */
export const VRRP_TAGS = ["ctera-lb:vrrp-state", "ctera-lb:vrrp-since"] as const;

/** Graviton instance types (family ending in "g", e.g. t4g, m7g, c7gn) run arm64 images. */
export function isGraviton(instanceType: string): boolean {
  return /^[a-z]+\d+[a-z]*g[a-z]*\./.test(instanceType) && !/^(g\d|p\d|inf|trn)/.test(instanceType);
}

/** highAvailability: the object naming a node's peer for the persistence sync (`{"peer":{address,port}}`).
 * The boot script derives it from the node's keepalived.conf key (same folder), so user data stays as it was. */
export function haPeerObjectKey(node: string): string {
  return `ha/${node}/peer.json`;
}
