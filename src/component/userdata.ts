/**
 * The instance's user data: a short shell script that names WHERE things are (bucket, keys, secret ARN,
 * interface roles) and the image's sha256 — never a secret, never the config's content. It fetches the
 * image, refuses it unless the hash matches, unpacks it and hands over to the image's own boot script.
 *
 * What goes in here is exactly what should replace the VM when it changes: the image hash (a new image →
 * a new VM, create-before-delete). The config is referenced by a stable key, so a config change leaves the
 * user data byte-identical and reaches the running proxy through the poller (reload, no restart).
 */
export interface BootParams {
  region: string;
  bucket: string;
  imageKey: string;
  imageSha256: string;
  configKey: string;
  /** ARN only; the value is read at boot with the instance role. */
  tlsSecretArn?: string;
  layout: "one-arm" | "two-arm";
  /** Interface that carries the VIP: eth0 (one-arm) or eth1 (two-arm). */
  clientInterface: "eth0" | "eth1";
  /** Interface toward the Portal servers and the admin API: always eth0. */
  internalInterface: "eth0";
  vip: string;
  deployment: string;
  /** highAvailability: this node's name (vm-0, vm-1) and its keepalived.conf object; keepalived moves the VIP. */
  haNode?: string;
  haConfigKey?: string;
}

const SAFE = /^[A-Za-z0-9_.:/@+=,-]*$/;

/** Values are checked, then single-quoted, so nothing in them can become shell syntax. */
function q(name: string, v: string): string {
  if (!SAFE.test(v)) throw new Error(`boot parameter ${name} has characters a boot script must not carry: ${JSON.stringify(v)}`);
  return `'${v}'`;
}

export function renderUserData(p: BootParams): string {
  if (!/^[0-9a-f]{64}$/.test(p.imageSha256)) throw new Error(`image sha256 is not 64 hex digits: ${p.imageSha256}`);
  const env: [string, string][] = [
    ["CTERA_LB_REGION", p.region],
    ["CTERA_LB_BUCKET", p.bucket],
    ["CTERA_LB_IMAGE_KEY", p.imageKey],
    ["CTERA_LB_IMAGE_SHA256", p.imageSha256],
    ["CTERA_LB_CONFIG_KEY", p.configKey],
    ["CTERA_LB_TLS_SECRET_ARN", p.tlsSecretArn ?? ""],
    ["CTERA_LB_LAYOUT", p.layout],
    ["CTERA_LB_CLIENT_IF", p.clientInterface],
    ["CTERA_LB_INTERNAL_IF", p.internalInterface],
    ["CTERA_LB_VIP", p.vip],
    ["CTERA_LB_DEPLOYMENT", p.deployment],
    ["CTERA_LB_HA_NODE", p.haNode ?? ""],
    ["CTERA_LB_HA_CONFIG_KEY", p.haConfigKey ?? ""],
  ];
  const envLines = env.map(([k, v]) => `${k}=${q(k, v)}`).join("\n");
  return `#!/bin/bash
# ctera-lb boot (user data). Carries locations and the image hash only: no secrets, no config content.
set -euo pipefail
umask 077
install -d -m 0755 /etc/ctera-lb /opt/ctera-lb /var/lib/ctera-lb
cat > /etc/ctera-lb/boot.env <<'CTERA_LB_ENV'
${envLines}
CTERA_LB_ENV
chmod 0644 /etc/ctera-lb/boot.env
# shellcheck source=/dev/null
. /etc/ctera-lb/boot.env

# The proxy runs on Node 20: Amazon Linux 2023 ships it in its own repository (served from S3 in-region).
if ! command -v node >/dev/null 2>&1; then
  dnf install -y nodejs20
  [ -x /usr/bin/node ] || ln -sf "$(command -v node-20)" /usr/bin/node
fi

# Fetch the image and refuse it unless its sha256 is the one this VM was created for.
img=$(mktemp /var/lib/ctera-lb/image.XXXXXX)
aws s3api get-object --region "$CTERA_LB_REGION" --bucket "$CTERA_LB_BUCKET" --key "$CTERA_LB_IMAGE_KEY" "$img" >/dev/null
if ! echo "$CTERA_LB_IMAGE_SHA256  $img" | sha256sum -c --status -; then
  echo "ctera-lb: image $CTERA_LB_IMAGE_KEY does not match sha256 $CTERA_LB_IMAGE_SHA256: refusing to run it" >&2
  rm -f "$img"
  exit 1
fi
rm -rf /opt/ctera-lb.new && install -d -m 0755 /opt/ctera-lb.new
tar -xzf "$img" -C /opt/ctera-lb.new --no-same-owner
rm -f "$img"
rm -rf /opt/ctera-lb && mv /opt/ctera-lb.new /opt/ctera-lb
exec /opt/ctera-lb/sbin/ctera-lb-boot
`;
}
