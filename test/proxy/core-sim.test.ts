/**
 * The simulated Portal that every proxy test stands on. Block 127.0.19.0/24, ports shifted +20000.
 */
import * as tls from "node:tls";
import * as net from "node:net";
import { startSimPortal, SimPortal } from "../../src/sim/portal";
import { getJson, httpGet } from "../helpers/net";

const ADDR = "127.0.19.11";
const ports = { https: 20443, https2: 28443, http: 20080, http2: 28080, cttp: 20995 };

describe("simulated Portal", () => {
  let p: SimPortal;
  beforeAll(async () => {
    p = await startSimPortal({ name: "portal-1", address: ADDR, ports });
  });
  afterAll(async () => {
    await p.stop();
  });

  test("answers an ordinary HTTPS request with its name, the path, the headers and the client address", async () => {
    const a = await getJson({ host: ADDR, port: ports.https, path: "/x?y=1", tls: true, localAddress: "127.0.119.5", headers: { "x-forwarded-for": "192.0.2.7" } });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ server: "portal-1", method: "GET", path: "/x?y=1", remoteAddress: "127.0.119.5", tls: true });
    expect(a.body.headers["x-forwarded-for"]).toBe("192.0.2.7");
  });

  test("answers plain HTTP on 80 and 8080", async () => {
    for (const port of [ports.http, ports.http2]) {
      const a = await getJson({ host: ADDR, port, path: "/", tls: false });
      expect(a.body).toMatchObject({ server: "portal-1", port, tls: false });
    }
  });

  test("/admin/startup answers 200, then 503 once switched, and records Host and SNI", async () => {
    const ok = await httpGet({ host: ADDR, port: ports.https2, path: "/admin/startup", tls: true, servername: "global.example.test", headers: { host: "global.example.test" } });
    expect(ok.status).toBe(200);
    p.setStartupStatus(503);
    const down = await httpGet({ host: ADDR, port: ports.https, path: "/admin/startup", tls: true });
    expect(down.status).toBe(503);
    p.setStartupStatus(200);
    expect(p.healthRequests[0]).toMatchObject({ method: "GET", path: "/admin/startup", host: "global.example.test", sni: "global.example.test" });
  });

  test("the TLS echo on 995 names the server first, then echoes", async () => {
    const s = tls.connect({ host: ADDR, port: ports.cttp, rejectUnauthorized: false });
    let got = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => (got += d));
    await new Promise((r) => s.once("secureConnect", r));
    s.write("ping\n");
    const deadline = Date.now() + 3000;
    while (!got.includes("ping") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    s.destroy();
    expect(got).toBe("portal portal-1\nping\n");
  });

  test("stop() closes the listeners and open sockets", async () => {
    const q = await startSimPortal({ name: "portal-2", address: "127.0.19.12", ports });
    const s = net.connect({ host: "127.0.19.12", port: ports.http });
    await new Promise((r) => s.once("connect", r));
    const closed = new Promise((r) => s.once("close", r));
    await q.stop();
    await closed;
    await expect(getJson({ host: "127.0.19.12", port: ports.http, path: "/", tls: false })).rejects.toThrow(/ECONNREFUSED/);
  });
});
