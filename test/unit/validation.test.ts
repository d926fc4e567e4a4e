/**
 * One failing input per validation rule: `ctera-lb validate` (and `render` where the rule is about inputs)
 * exits 2, prints nothing on stdout, and names the field and the fix on stderr.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli";
import { render, RuntimeConfig } from "../../src/config";
import { makeCert, TestCert } from "./fixtures";

async function run(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

let dir: string;
let cert: TestCert;
let other: TestCert;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ctera-lb-validate-"));
  cert = makeCert();
  other = makeCert("other.example.test");
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  cert.cleanup();
  other.cleanup();
});

const base = (): RuntimeConfig =>
  JSON.parse(JSON.stringify(render({ design: "ssl-on-portal", vip: "127.0.50.10", realServers: ["127.0.50.11", "127.0.50.12"] })));
const baseLb = (): RuntimeConfig =>
  JSON.parse(JSON.stringify(render({
    design: "ssl-on-lb", vip: "127.0.50.10", realServers: ["127.0.50.11", "127.0.50.12"],
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
  })));

let n = 0;
async function validate(doc: unknown) {
  const file = join(dir, `c${n++}.json`);
  writeFileSync(file, typeof doc === "string" ? doc : JSON.stringify(doc));
  return run(["validate", file]);
}

type Mutation = [rule: string, mutate: (c: RuntimeConfig) => unknown, field: string, fix: RegExp];
const RULES: Mutation[] = [
  ["no real servers", (c) => { c.virtualServices[0].realServers = []; }, "virtualServices[0].realServers", /add at least one/],
  ["duplicate real-server names", (c) => { c.virtualServices[0].realServers[1].name = "portal-1"; }, "virtualServices[0].realServers[1].name", /names are unique/],
  ["duplicate real-server addresses", (c) => { c.virtualServices[0].realServers[1].address = "127.0.50.11"; }, "virtualServices[0].realServers[1].address", /list each Portal server once/],
  ["port 0", (c) => { c.virtualServices[0].listeners[0].port = 0; }, "virtualServices[0].listeners[0].port", /between 1 and 65535/],
  ["port 65536", (c) => { c.virtualServices[0].realServers[0].port = 65536; }, "virtualServices[0].realServers[0].port", /between 1 and 65535/],
  ["two listeners on one address:port", (c) => { c.virtualServices[0].listeners[2].port = 443; }, "virtualServices[0].listeners[2]", /already used by virtualServices\[0\]\.listeners\[0\]/],
  ["a listener on the admin address:port", (c) => { c.admin = { ...c.admin, address: "127.0.50.10", port: 995 }; }, "virtualServices[0].listeners[1]", /already used by admin/],
  ["an address that does not parse", (c) => { c.virtualServices[0].realServers[0].address = "10.0.0.300"; }, "virtualServices[0].realServers[0].address", /not an IP address/],
  ["a health interval below 100 ms", (c) => { c.virtualServices[0].healthCheck.intervalMs = 50; }, "virtualServices[0].healthCheck.intervalMs", /at least 100 ms/],
  ["rise below 1", (c) => { c.virtualServices[0].healthCheck.rise = 0; }, "virtualServices[0].healthCheck.rise", /at least 1/],
  ["fall below 1", (c) => { c.virtualServices[0].healthCheck.fall = 0; }, "virtualServices[0].healthCheck.fall", /at least 1/],
  ["weight above 256", (c) => { c.virtualServices[0].realServers[0].weight = 257; }, "virtualServices[0].realServers[0].weight", /between 0 and 256/],
  ["weight below 0", (c) => { c.virtualServices[0].realServers[0].weight = -1; }, "virtualServices[0].realServers[0].weight", /between 0 and 256/],
  ["persistence timeout below 1 s", (c) => { c.virtualServices[0].persistence.timeoutSeconds = 0.5; }, "virtualServices[0].persistence.timeoutSeconds", /between 1 s and 7 days/],
  ["persistence timeout above 7 days", (c) => { c.virtualServices[0].persistence.timeoutSeconds = 604801; }, "virtualServices[0].persistence.timeoutSeconds", /between 1 s and 7 days/],
  ["an unknown key", (c) => { (c.virtualServices[0] as unknown as Record<string, unknown>).persistance = {}; }, "virtualServices[0].persistance", /unknown key 'persistance'/],
  ["a health timeout not shorter than the interval", (c) => { c.virtualServices[0].healthCheck.timeoutMs = 4000; }, "virtualServices[0].healthCheck.timeoutMs", /shorter than the interval/],
  ["TLS on a tcp VIP", (c) => { c.virtualServices[0].listeners[0].tls = { certFile: cert.certFile, keyFile: cert.keyFile }; }, "virtualServices[0].listeners[0].tls", /needs an http VIP/],
  ["x-forwarded-for on a tcp VIP", (c) => { c.virtualServices[0].clientIp = "x-forwarded-for"; }, "virtualServices[0].clientIp", /use 'proxy-v2'/],
  ["a wrong config version", (c) => { (c as { version: number }).version = 2; }, "version", /expected 1/i],
];

describe("ctera-lb validate refuses each broken rule, naming the field and the fix", () => {
  test("the unbroken config is accepted (exit 0)", async () => {
    const r = await validate(base());
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/^ok: .*CTERA_Portal \(tcp: 443, 995, 8443\)/);
  });

  test.each(RULES)("%s", async (_rule, mutate, field, fix) => {
    const doc = base();
    mutate(doc);
    const r = await validate(doc);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const line = r.stderr.split("\n").find((l) => l.includes(`- ${field}:`));
    expect(line).toBeDefined();
    expect(line).toMatch(fix);
  });

  test("every problem is listed, not just the first", async () => {
    const doc = base();
    doc.virtualServices[0].listeners[0].port = 0;
    doc.virtualServices[0].healthCheck.rise = 0;
    const r = await validate(doc);
    expect(r.stderr).toMatch(/listeners\[0\]\.port/);
    expect(r.stderr).toMatch(/healthCheck\.rise/);
  });

  test("a file that is not JSON is refused with exit 2", async () => {
    const r = await validate("{ not json");
    expect(r).toMatchObject({ code: 2, stdout: "" });
    expect(r.stderr).toMatch(/cannot read .* as JSON/);
  });
});

describe("TLS material is checked: PEM, and cert and key belong together", () => {
  test("a certificate file that is not PEM", async () => {
    const bad = join(dir, "not-a-cert.pem");
    writeFileSync(bad, "hello");
    const doc = baseLb();
    doc.virtualServices[0].listeners[1].tls = { certFile: bad, keyFile: cert.keyFile };
    const r = await validate(doc);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/virtualServices\[0\]\.listeners\[1\]\.tls\.certFile: not a PEM certificate/);
  });

  test("a key that belongs to another certificate", async () => {
    const doc = baseLb();
    doc.virtualServices[1].listeners[1].tls = { certFile: cert.certFile, keyFile: other.keyFile };
    const r = await validate(doc);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/virtualServices\[1\]\.listeners\[1\]\.tls\.keyFile: the private key does not belong to the certificate/);
  });

  test("a missing file", async () => {
    const doc = baseLb();
    doc.virtualServices[0].listeners[1].tls = { certFile: join(dir, "nope.pem"), keyFile: cert.keyFile };
    const r = await validate(doc);
    expect(r.stderr).toMatch(/tls\.certFile: cannot read .*nope\.pem \(ENOENT\)/);
  });
});

describe("ctera-lb render", () => {
  const args = ["render", "--design", "ssl-on-portal", "--vip", "127.0.50.10", "--real-server", "127.0.50.11", "--real-server", "127.0.50.12"];

  test("prints a config that validate accepts", async () => {
    const r = await run(args);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    const v = await validate(r.stdout);
    expect(v.code).toBe(0);
  });

  test("ssl-on-lb with a cert and key made by the test renders and validates", async () => {
    const r = await run(["render", "--design", "ssl-on-lb", "--vip", "127.0.50.10", "--real-server", "127.0.50.11",
      "--tls-cert", cert.certFile, "--tls-key", cert.keyFile, "--health-host", "global.portal.example.test"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).virtualServices[0].healthCheck.host).toBe("global.portal.example.test");
    expect((await validate(r.stdout)).code).toBe(0);
  });

  test.each([
    ["ssl-on-lb without TLS material", ["--design", "ssl-on-lb", "--vip", "127.0.50.10", "--real-server", "127.0.50.11"], /tls: ssl-on-lb terminates TLS on the load balancer: give the certificate and key/],
    ["no real servers", ["--design", "ssl-on-portal", "--vip", "127.0.50.10"], /--real-server is required/],
    ["a VIP that does not parse", ["--design", "ssl-on-portal", "--vip", "127.0.50", "--real-server", "127.0.50.11"], /vip: not an IP address/],
    ["an unknown design", ["--design", "ssl-on-moon", "--vip", "127.0.50.10", "--real-server", "127.0.50.11"], /design: design is 'ssl-on-portal' or 'ssl-on-lb'/],
    ["a duplicate real server", ["--design", "ssl-on-portal", "--vip", "127.0.50.10", "--real-server", "127.0.50.11", "--real-server", "127.0.50.11"], /realServers\[1\]\.address: duplicate real-server address/],
    ["an unknown flag", ["--design", "ssl-on-portal", "--vipp", "127.0.50.10"], /Unknown option '--vipp'/],
    ["a key that does not match the certificate", ["--design", "ssl-on-lb", "--vip", "127.0.50.10", "--real-server", "127.0.50.11", "--tls-cert", "CERT", "--tls-key", "OTHERKEY"], /tls\.keyFile: the private key does not belong to the certificate/],
  ])("refuses %s: exit 2, nothing on stdout", async (_name, flags, message) => {
    const argv = ["render", ...flags.map((f) => (f === "CERT" ? cert.certFile : f === "OTHERKEY" ? other.keyFile : f))];
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(message);
  });
});

test.each([["schema", "--bogus"], ["demo", "--help"], ["demo", "extra"]])("ctera-lb %s refuses the argument %s (it takes none): exit 2, usage, nothing run", async (cmd, arg) => {
  const r = await run([cmd, arg]);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe("");
  expect(r.stderr).toMatch(new RegExp(`^ctera-lb ${cmd}: .*${arg}[\\s\\S]*usage:`));
});

describe("ctera-lb schema", () => {
  test("prints the JSON Schema of the runtime config, strict about unknown keys", async () => {
    const r = await run(["schema"]);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.properties.virtualServices.type).toBe("array");
    expect(schema.additionalProperties).toBe(false);
    const vs = schema.properties.virtualServices.items;
    expect(vs.properties.mode.enum).toEqual(["tcp", "http"]);
    expect(vs.properties.healthCheck.properties.intervalMs.minimum).toBe(100);
  });
});
