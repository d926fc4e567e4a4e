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
  writeFileSync(join(fakeBin, "aws"), `#!/bin/bash
echo "aws $*" >> "${s3}/calls"
case "$2" in
  head-object) cat "${s3}/etag" ;;
  get-object)
    for a; do out=$a; done
    prev=""; for a; do [ "$prev" = --if-match ] && m=$a; prev=$a; done
    [ "$m" = "$(cat "${s3}/etag")" ] || { echo "PreconditionFailed" >&2; exit 254; }
    cp "${s3}/object" "$out" ;;
esac
`);
  writeFileSync(join(fakeBin, "systemctl"), `#!/bin/bash\necho "systemctl $*" >> "${s3}/calls"\n`);
  writeFileSync(join(fakeBin, "chgrp"), "#!/bin/bash\nexit 0\n");
  for (const f of ["aws", "systemctl", "chgrp"]) chmodSync(join(fakeBin, f), 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function publish(etag: string, body: string) {
  writeFileSync(join(s3, "etag"), etag);
  writeFileSync(join(s3, "object"), body);
  writeFileSync(join(s3, "calls"), "");
}
function sync() {
  return spawnSync(join(prefix, "sbin/ctera-lb-config-sync"), [], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, CTERA_LB_ETC: etc, CTERA_LB_VAR: v, CTERA_LB_PREFIX: prefix },
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
