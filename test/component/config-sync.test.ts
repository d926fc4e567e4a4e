/**
 * The config delivery on the VM (scripts/image/ctera-lb-config-sync), run for real against a fake `aws`
 * (a directory standing in for the S3 object) and a fake `systemctl`, with the image's own `ctera-lb
 * validate`: a changed ETag installs the validated config atomically and reloads; an unchanged ETag does
 * nothing; an invalid config is refused and the running config stays.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { render } from "../../src/config";

const ROOT = join(__dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "ctera-lb-sync-"));
const etc = join(dir, "etc"), v = join(dir, "var"), prefix = join(dir, "opt"), s3 = join(dir, "s3"), fakeBin = join(dir, "fakebin");

beforeAll(() => {
  for (const d of [etc, v, prefix, s3, fakeBin]) mkdirSync(d, { recursive: true });
  const built = JSON.parse(execFileSync("node", ["scripts/build-image", "--out", join(dir, "build")], { cwd: ROOT, encoding: "utf8" }));
  execFileSync("tar", ["-xzf", join(ROOT, built.file), "-C", prefix]);
  writeFileSync(join(etc, "boot.env"), "CTERA_LB_REGION='eu-west-1'\nCTERA_LB_BUCKET='b'\nCTERA_LB_CONFIG_KEY='config/config.json'\n");
  writeFileSync(join(v, "host.env"), "CTERA_LB_INTERNAL_IP=10.0.1.20\n");
  // A key-aware fake S3: object <key> is ${s3}/obj/<key>, its ETag ${s3}/obj/<key>.etag; a missing key fails
  // like the real CLI (exit 254).
  writeFileSync(join(fakeBin, "aws"), `#!/bin/bash
echo "aws $*" >> "${s3}/calls"
key=""; m=""; prev=""
for a; do [ "$prev" = --key ] && key=$a; [ "$prev" = --if-match ] && m=$a; prev=$a; done
obj="${s3}/obj/$key"
[ -f "$obj.etag" ] || { echo "An error occurred (404) when calling the HeadObject operation: Not Found" >&2; exit 254; }
case "$2" in
  head-object) cat "$obj.etag" ;;
  get-object)
    for a; do out=$a; done
    [ "$m" = "$(cat "$obj.etag")" ] || { echo "PreconditionFailed" >&2; exit 254; }
    cp "$obj" "$out" ;;
esac
`);
  writeFileSync(join(fakeBin, "systemctl"), `#!/bin/bash\necho "systemctl $*" >> "${s3}/calls"\n`);
  writeFileSync(join(fakeBin, "chgrp"), "#!/bin/bash\nexit 0\n");
  for (const f of ["aws", "systemctl", "chgrp"]) chmodSync(join(fakeBin, f), 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function put(key: string, etag: string, body: string) {
  mkdirSync(join(s3, "obj", key, ".."), { recursive: true });
  writeFileSync(join(s3, "obj", key + ".etag"), etag);
  writeFileSync(join(s3, "obj", key), body);
}
function publish(etag: string, body: string) {
  put("config/config.json", etag, body);
  writeFileSync(join(s3, "calls"), "");
}
function sync(etcDir = etc, varDir = v) {
  return spawnSync(join(prefix, "sbin/ctera-lb-config-sync"), [], {
    encoding: "utf8",
    env: {
      ...process.env,
      PATH: `${fakeBin}:${process.env.PATH}`,
      CTERA_LB_ETC: etcDir,
      CTERA_LB_VAR: varDir,
      CTERA_LB_PREFIX: prefix,
      CTERA_LB_KEEPALIVED_CONF: join(dir, "keepalived", "keepalived.conf"),
    },
  });
}
const calls = () => readFileSync(join(s3, "calls"), "utf8");
const config = (timeoutSeconds: number) =>
  JSON.stringify(render({ design: "ssl-on-portal", vip: "10.0.1.10", realServers: ["10.0.1.11"], persistence: { timeoutSeconds } }), null, 2);

describe("config delivery: poll the ETag, validate, swap atomically, reload", () => {
  test("a new ETag installs the config with the admin API bound to the internal address, then reloads", () => {
    publish('"etag-1"', config(1800));
    const r = sync();
    expect(r.status).toBe(0);
    const installed = JSON.parse(readFileSync(join(etc, "config.json"), "utf8"));
    expect(installed.virtualServices[0].persistence.timeoutSeconds).toBe(1800);
    expect(installed.admin.address).toBe("10.0.1.20");
    expect(calls()).toMatch(/systemctl reload ctera-lb.service/);
  });

  test("an unchanged ETag downloads nothing and does not reload", () => {
    writeFileSync(join(s3, "calls"), "");
    expect(sync().status).toBe(0);
    expect(calls()).not.toMatch(/get-object/);
    expect(calls()).not.toMatch(/reload/);
  });

  test("a changed config is picked up on the next poll", () => {
    publish('"etag-2"', config(600));
    expect(sync().status).toBe(0);
    expect(JSON.parse(readFileSync(join(etc, "config.json"), "utf8")).virtualServices[0].persistence.timeoutSeconds).toBe(600);
    expect(calls()).toMatch(/reload/);
  });

  test("an invalid config is refused: the installed config stays, no reload, no temp file left", () => {
    const before = readFileSync(join(etc, "config.json"), "utf8");
    publish('"etag-3"', JSON.stringify({ version: 1, virtualServices: [] }));
    const r = sync();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/refused; the proxy keeps its current config/);
    expect(readFileSync(join(etc, "config.json"), "utf8")).toBe(before);
    expect(calls()).not.toMatch(/reload/);
    expect(require("node:fs").readdirSync(etc).filter((f: string) => f.startsWith(".config."))).toEqual([]);
    expect(existsSync(join(v, "config.etag")) && readFileSync(join(v, "config.etag"), "utf8").trim()).toBe('"etag-2"');
  });
});

describe("HA pair: the node's keepalived.conf and peer object are polled too (they name the other node)", () => {
  const etcHa = join(dir, "etc-ha");
  const varHa = join(dir, "var-ha");
  const kaConf = join(dir, "keepalived", "keepalived.conf");
  const haConfig = () =>
    JSON.stringify(render({ design: "ssl-on-portal", vip: "10.0.1.10", realServers: ["10.0.1.11"], admin: { port: 9090, token: "pair-token-0123456789" } }), null, 2);
  const installed = () => JSON.parse(readFileSync(join(etcHa, "config.json"), "utf8"));
  beforeAll(() => {
    for (const d of [etcHa, varHa]) mkdirSync(d, { recursive: true });
    writeFileSync(
      join(etcHa, "boot.env"),
      "CTERA_LB_REGION='eu-west-1'\nCTERA_LB_BUCKET='b'\nCTERA_LB_CONFIG_KEY='config/config.json'\nCTERA_LB_HA_NODE='vm-0'\nCTERA_LB_HA_CONFIG_KEY='ha/vm-0/keepalived.conf'\n",
    );
    writeFileSync(join(varHa, "host.env"), "CTERA_LB_INTERNAL_IP=10.0.1.20\n");
    publish('"c-1"', haConfig());
    put("ha/vm-0/keepalived.conf", '"k-1"', "# keepalived for vm-0, peer 10.0.1.21\n");
    put("ha/vm-0/peer.json", '"p-1"', JSON.stringify({ peer: { address: "10.0.1.21", port: 9090 } }));
  });

  test("first run: keepalived.conf installed, the peer folded into the config as highAvailability.peer", () => {
    const r = sync(etcHa, varHa);
    expect(r.status).toBe(0);
    expect(readFileSync(kaConf, "utf8")).toContain("peer 10.0.1.21");
    expect(installed().highAvailability).toEqual({ peer: { address: "10.0.1.21", port: 9090 } });
    expect(installed().admin.address).toBe("10.0.1.20");
  });

  test("nothing changed: nothing downloaded, nothing reloaded", () => {
    writeFileSync(join(s3, "calls"), "");
    expect(sync(etcHa, varHa).status).toBe(0);
    expect(calls()).not.toMatch(/get-object|reload/);
  });

  test("the peer was replaced (new address): both objects are fetched again, the proxy and keepalived reload, the config itself unchanged", () => {
    writeFileSync(join(s3, "calls"), "");
    put("ha/vm-0/keepalived.conf", '"k-2"', "# keepalived for vm-0, peer 10.0.1.31\n");
    put("ha/vm-0/peer.json", '"p-2"', JSON.stringify({ peer: { address: "10.0.1.31", port: 9090 } }));
    expect(sync(etcHa, varHa).status).toBe(0);
    expect(readFileSync(kaConf, "utf8")).toContain("peer 10.0.1.31");
    expect(installed().highAvailability.peer.address).toBe("10.0.1.31");
    expect(calls()).toMatch(/systemctl reload keepalived.service/);
    expect(calls()).toMatch(/systemctl reload ctera-lb.service/);
  });

  test("the peer object is gone (no admin token any more): the sync is dropped from the config", () => {
    rmSync(join(s3, "obj", "ha/vm-0/peer.json.etag"));
    expect(sync(etcHa, varHa).status).toBe(0);
    expect(installed().highAvailability).toBeUndefined();
    expect(existsSync(join(varHa, "ha-peer.json"))).toBe(false);
  });
});
