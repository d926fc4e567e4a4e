import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { haproxyTlsBundles, render, renderHaproxyConfig, writeHaproxyTlsBundles } from "../../src/config";
import type { RenderInputs, RuntimeConfig } from "../../src/config";
import { makeCert, TestCert } from "./fixtures";

/** The sections of a rendered haproxy.cfg: header line → its indented lines (trimmed). */
function sections(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  let cur: string[] | undefined;
  for (const line of text.split("\n")) {
    if (/^\S/.test(line) && !line.startsWith("#")) {
      cur = [];
      map.set(line.trim(), cur);
    } else if (cur && line.trim()) {
      cur.push(line.trim());
    }
  }
  return map;
}

function section(text: string, header: string): string[] {
  const s = sections(text).get(header);
  if (!s) throw new Error(`no '${header}' section in:\n${text}`);
  return s;
}

/** haproxy must be present: CI installs it (scripts/install-test-deps); a silent skip would hide a broken config. */
function haproxyBinary(): string {
  const r = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error("haproxy is not installed: these tests run `haproxy -c` on the rendered config. Install it (Debian: apt-get install haproxy, or scripts/install-test-deps).");
  }
  return "haproxy";
}

let cert: TestCert;
let dir: string;
beforeAll(() => {
  cert = makeCert();
  dir = mkdtempSync(join(tmpdir(), "ctera-lb-haproxy-"));
});
afterAll(() => {
  cert.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const portal = (extra: Partial<RenderInputs> = {}): RuntimeConfig =>
  render({ design: "ssl-on-portal", vip: "10.0.0.10", realServers: ["10.0.1.11", "10.0.1.12"], workers: 2, ...extra });
const onLb = (extra: Partial<RenderInputs> = {}): RuntimeConfig =>
  render({
    design: "ssl-on-lb",
    vip: "10.0.0.10",
    realServers: ["10.0.1.11", "10.0.1.12"],
    tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    ...extra,
  });

describe("renderHaproxyConfig: ssl-on-portal", () => {
  test("one TCP frontend binds every client port of the VIP and hands them to one backend", () => {
    const fe = section(renderHaproxyConfig(portal()), "frontend CTERA_Portal");
    expect(fe).toContain("mode tcp");
    expect(fe.filter((l) => l.startsWith("bind "))).toEqual([
      "bind 10.0.0.10:443",
      "bind 10.0.0.10:995",
      "bind 10.0.0.10:8443",
    ]);
    expect(fe).toContain("default_backend CTERA_Portal");
  });

  test("the backend keeps one source-IP stick table for all ports, expiring after the persistence timeout", () => {
    const text = renderHaproxyConfig(portal({ persistence: { timeoutSeconds: 900 } }));
    const be = section(text, "backend CTERA_Portal");
    expect(be).toContain("stick-table type ip size 1m expire 900s");
    expect(be).toContain("stick on src");
    expect(text.match(/stick-table/g)).toHaveLength(1);
  });

  test("servers get no port (the port the client hit) and are checked with an HTTPS GET of /admin/startup on 443", () => {
    const be = section(renderHaproxyConfig(portal()), "backend CTERA_Portal");
    expect(be).toContain("balance leastconn");
    expect(be).toContain("option httpchk");
    expect(be).toContain("http-check send meth GET uri /admin/startup ver HTTP/1.0");
    expect(be).toContain("default-server inter 4s rise 2 fall 2 check-ssl verify none on-marked-down shutdown-sessions");
    expect(be).toContain("server portal-1 10.0.1.11 weight 100 check port 443");
    expect(be).toContain("server portal-2 10.0.1.12 weight 100 check port 443");
  });

  test("the worker count becomes nbthread and timeouts come from the config", () => {
    const text = renderHaproxyConfig(portal({ timeouts: { connectMs: 2500, clientIdleSeconds: 600 } }));
    expect(section(text, "global")).toContain("nbthread 2");
    expect(section(text, "frontend CTERA_Portal")).toContain("maxconn 40000");
    expect(section(text, "frontend CTERA_Portal")).toContain("timeout client 600s");
    expect(section(text, "backend CTERA_Portal")).toContain("timeout connect 2500ms");
  });

  test("global maxconn is left to HAProxy (sized from ulimit -n) unless given", () => {
    expect(section(renderHaproxyConfig(portal()), "global").some((l) => l.startsWith("maxconn"))).toBe(false);
    expect(section(renderHaproxyConfig(portal(), { maxconn: 5000 }), "global")).toContain("maxconn 5000");
  });

  test("TLS floor is 1.2 with forward-secret AEAD ciphers only (no RC4, no TLS 1.0)", () => {
    const g = section(renderHaproxyConfig(portal()), "global");
    expect(g).toContain("ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets");
    const ciphers = g.find((l) => l.startsWith("ssl-default-bind-ciphers "))!;
    expect(ciphers).not.toMatch(/RC4|CBC|SHA:|3DES|NULL/);
    expect(ciphers).toMatch(/ECDHE-RSA-AES128-GCM-SHA256/);
  });

  test("the admin address serves HAProxy's stats page", () => {
    const fe = section(renderHaproxyConfig(portal({ admin: { address: "127.0.0.1", port: 9191 } })), "frontend admin");
    expect(fe).toContain("bind 127.0.0.1:9191");
    expect(fe).toContain("stats enable");
  });
});

describe("renderHaproxyConfig: ssl-on-lb", () => {
  test("TLS listeners bind with the combined cert+key bundle, plain ones redirect to https", () => {
    const text = renderHaproxyConfig(onLb(), { tlsBundleDir: "/etc/haproxy/certs" });
    const fe1 = section(text, "frontend CTERA_Portal_Web_1");
    expect(fe1).toContain("mode http");
    expect(fe1).toContain("bind 10.0.0.10:80");
    expect(fe1).toContain("bind 10.0.0.10:443 ssl crt /etc/haproxy/certs/CTERA_Portal_Web_1-443.pem alpn http/1.1");
    expect(fe1).toContain(
      "http-request redirect location https://%[req.hdr(host),field(1,:)]%[capture.req.uri] code 301 if !{ ssl_fc } { dst_port 80 }",
    );
    const fe2 = section(text, "frontend CTERA_Portal_Web_2");
    // Same cert/key pair → the same bundle; the redirect names the non-default TLS port.
    expect(fe2).toContain("bind 10.0.0.10:8443 ssl crt /etc/haproxy/certs/CTERA_Portal_Web_1-443.pem alpn http/1.1");
    expect(fe2.some((l) => l.includes("https://%[req.hdr(host),field(1,:)]:8443%[capture.req.uri]") && l.includes("dst_port 8080"))).toBe(true);
  });

  test("with a ticket-keys file: stateless session tickets with those keys on every TLS bind (ctera-lb's behaviour)", () => {
    const text = renderHaproxyConfig(onLb(), { tlsBundleDir: "/etc/haproxy/certs", tlsTicketKeysFile: "/etc/haproxy/tickets.keys" });
    expect(section(text, "global")).toContain("ssl-default-bind-options ssl-min-ver TLSv1.2");
    expect(section(text, "frontend CTERA_Portal_Web_1")).toContain(
      "bind 10.0.0.10:443 ssl crt /etc/haproxy/certs/CTERA_Portal_Web_1-443.pem tls-ticket-keys /etc/haproxy/tickets.keys alpn http/1.1",
    );
    expect(section(text, "frontend CTERA_Portal_Web_1")).toContain("bind 10.0.0.10:80");
  });

  test("web VIPs add X-Forwarded-For/Proto/Port, HSTS and Secure/HttpOnly on JSESSIONID over TLS", () => {
    const fe = section(renderHaproxyConfig(onLb()), "frontend CTERA_Portal_Web_1");
    expect(fe).toContain("option forwardfor");
    expect(fe).toContain("http-request set-header X-Forwarded-Proto https if { ssl_fc }");
    expect(fe).toContain("http-request set-header X-Forwarded-Port %[dst_port]");
    expect(fe).toContain('http-response set-header Strict-Transport-Security "max-age=31536000" if { ssl_fc }');
    expect(fe.filter((l) => l.startsWith("http-response replace-header Set-Cookie '^(JSESSIONID="))).toHaveLength(2);
  });

  test("HSTS off and extra secure cookies follow the http options", () => {
    const fe = section(
      renderHaproxyConfig(onLb({ http: { hstsMaxAgeSeconds: null, secureCookies: ["JSESSIONID", "ctera.sid"] } })),
      "frontend CTERA_Portal_Web_1",
    );
    expect(fe.some((l) => l.includes("Strict-Transport-Security"))).toBe(false);
    expect(fe.filter((l) => l.includes("'^(ctera\\.sid="))).toHaveLength(2);
  });

  test("web backends translate to the server port; CTTP is checked by a plain connect", () => {
    const text = renderHaproxyConfig(onLb());
    const web2 = section(text, "backend CTERA_Portal_Web_2");
    expect(web2).toContain("server portal-1 10.0.1.11:8080 weight 100 check port 443");
    expect(web2).toContain("option httpchk");
    const cttp = section(text, "backend CTERA_Portal_CTTP");
    expect(cttp).toContain("mode tcp");
    expect(cttp.some((l) => l.includes("httpchk") || l.includes("check-ssl"))).toBe(false);
    expect(cttp).toContain("server portal-1 10.0.1.11 weight 100 check port 995");
  });

  test("one bundle per distinct cert/key pair, written as chain then key with mode 0600", () => {
    const cfg = onLb();
    const bundles = writeHaproxyTlsBundles(cfg, { tlsBundleDir: join(dir, "b1") });
    expect(bundles).toHaveLength(1);
    const pem = readFileSync(bundles[0].file, "utf8");
    expect(pem.indexOf("BEGIN CERTIFICATE")).toBeLessThan(pem.indexOf("PRIVATE KEY"));
    expect(statSync(bundles[0].file).mode & 0o777).toBe(0o600);
    expect(haproxyTlsBundles(portal())).toEqual([]);
  });
});

describe("renderHaproxyConfig: per-VIP options", () => {
  test("source address, PROXY v2, roundrobin, weights and a check Host header map to their HAProxy keywords", () => {
    const cfg = render({
      design: "ssl-on-portal",
      vip: "10.0.0.10",
      realServers: [{ address: "10.0.1.11", weight: 50 }, "10.0.1.12"],
      sourceAddress: "10.0.1.5",
      balance: "roundrobin",
      healthCheck: { host: "global.portal.example.com", intervalMs: 2000, rise: 3, fall: 4 },
      virtualServices: { CTERA_Portal: { clientIp: "proxy-v2" } },
    });
    const be = section(renderHaproxyConfig(cfg), "backend CTERA_Portal");
    expect(be).toContain("source 10.0.1.5");
    expect(be).toContain("balance roundrobin");
    expect(be).toContain("http-check send meth GET uri /admin/startup ver HTTP/1.1 hdr Host global.portal.example.com");
    expect(be).toContain(
      "default-server inter 2s rise 3 fall 4 check-ssl verify none check-sni global.portal.example.com on-marked-down shutdown-sessions send-proxy-v2",
    );
    expect(be).toContain("server portal-1 10.0.1.11 weight 50 check port 443");
  });

  test("persistence none renders no stick table; shutdown-sessions off drops on-marked-down", () => {
    const cfg = portal({ persistence: { type: "none" } });
    cfg.virtualServices[0].shutdownSessionsOnDown = false;
    const be = section(renderHaproxyConfig(cfg), "backend CTERA_Portal");
    expect(be.some((l) => l.startsWith("stick"))).toBe(false);
    expect(be.some((l) => l.includes("on-marked-down"))).toBe(false);
  });

  test("IPv6 addresses are bracketed and use an ipv6 stick table", () => {
    const cfg = render({ design: "ssl-on-portal", vip: "fd00::10", realServers: ["fd00::11"] });
    const text = renderHaproxyConfig(cfg);
    expect(section(text, "frontend CTERA_Portal")).toContain("bind [fd00::10]:443");
    expect(section(text, "backend CTERA_Portal")).toContain("stick-table type ipv6 size 1m expire 1800s");
    expect(section(text, "backend CTERA_Portal")).toContain("server portal-1 [fd00::11] weight 100 check port 443");
  });
});

describe("haproxy -c accepts the rendered config", () => {
  const check = (name: string, cfg: RuntimeConfig, extra: { tlsTicketKeysFile?: string } = {}) => {
    const bin = haproxyBinary();
    const opts = { tlsBundleDir: join(dir, `${name}-certs`), ...extra };
    writeHaproxyTlsBundles(cfg, opts);
    const file = join(dir, `${name}.cfg`);
    writeFileSync(file, renderHaproxyConfig(cfg, opts));
    const r = spawnSync(bin, ["-c", "-f", file], { encoding: "utf8" });
    expect({ status: r.status, output: `${r.stdout}${r.stderr}`.trim() }).toEqual({ status: 0, output: "Configuration file is valid" });
  };

  test("ssl-on-portal preset", () => check("portal", portal()));
  test("ssl-on-lb preset with a self-signed certificate", () => check("onlb", onLb()));
  test("every optional keyword at once (source, proxy-v2, Host, IPv6 VIP)", () =>
    check(
      "options",
      render({
        design: "ssl-on-lb",
        vip: "fd00::10",
        realServers: ["fd00::11", "fd00::12"],
        sourceAddress: "fd00::5",
        tls: { certFile: cert.certFile, keyFile: cert.keyFile },
        healthCheck: { host: "global.portal.example.com", verifyTls: true, timeoutMs: 1500 },
        virtualServices: { CTERA_Portal_CTTP: { clientIp: "proxy-v2" } },
      }),
    ));

  test("ssl-on-lb preset with session-ticket keys", () => {
    const keys = join(dir, "tickets.keys");
    writeFileSync(keys, [1, 2, 3].map(() => randomBytes(48).toString("base64")).join("\n") + "\n", { mode: 0o600 });
    check("tickets", onLb(), { tlsTicketKeysFile: keys });
  });

  test("a broken config is reported (the check can fail)", () => {
    const bin = haproxyBinary();
    const file = join(dir, "broken.cfg");
    writeFileSync(file, renderHaproxyConfig(portal()).replace("balance leastconn", "balance fastest"));
    expect(spawnSync(bin, ["-c", "-f", file], { encoding: "utf8" }).status).not.toBe(0);
  });
});

