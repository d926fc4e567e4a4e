/**
 * The status page as a document: self-contained, CSP-clean, escaping, colour + word per state, sparklines,
 * read-only mode. Fed by a contract-shaped stand-in admin API (fake-admin.ts) so each test can choose its
 * data; the live behaviour against the real proxy is in status-page.test.ts.
 * Loopback block: 127.0.31.0/24.
 */
import { statusPageHtml } from "../../src/proxy/admin/page";
import { STATUS_PAGE_SCRIPT } from "../../src/proxy/admin/ui/client";
import { Browser, launchBrowser, screenshot } from "./browser";
import { FakeAdmin, startFakeAdmin, threeServerVip } from "./fake-admin";

const BASE = "127.0.31";
const TOKEN = "page-test-token-0123456789";

describe("status page document (no browser)", () => {
  test("is one HTML document with its style and script inline and no external reference", () => {
    const html = statusPageHtml();
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toMatch(/<style>[\s\S]+<\/style>/);
    expect(html).toMatch(/<script>[\s\S]+<\/script>/);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+rel="stylesheet"/i);
    // The only absolute URL is the SVG namespace name (an identifier, never fetched).
    const urls = html.match(/https?:\/\/[^\s'"`)]+/g) ?? [];
    expect(urls.every((u) => u === "http://www.w3.org/2000/svg")).toBe(true);
  });

  test("its script never builds markup from strings (API data goes in as text only)", () => {
    expect(STATUS_PAGE_SCRIPT).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });

  test("its script sends the token only in an Authorization header and sets no cookie", () => {
    expect(STATUS_PAGE_SCRIPT).toContain("'Authorization': 'Bearer ' + S.token");
    expect(STATUS_PAGE_SCRIPT).not.toMatch(/document\.cookie|localStorage/);
  });
});

describe("browser tests without a browser", () => {
  test("fail with the install command instead of skipping when Chromium is missing", async () => {
    await expect(launchBrowser("/nonexistent/chromium")).rejects.toThrow(/apt-get install chromium/);
  });
});

describe("status page in Chromium (stand-in admin API)", () => {
  let browser: Browser;
  let fake: FakeAdmin | undefined;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  test("loads with no request outside the admin origin and no CSP violation or script error", async () => {
    fake = await startFakeAdmin({ address: `${BASE}.1`, token: TOKEN, vips: [threeServerVip("CTERA_Portal", BASE)] });
    const w = await browser.newPage();
    await w.page.goto(fake.url);
    await w.page.locator('tr[data-server="CTERA_Portal/portal-3"] .state-text').getByText("UP").waitFor();
    await w.page.waitForTimeout(1800); // at least one more poll
    await screenshot(w.page, "page-loaded");
    await w.page.close();
    const origin = new URL(fake.url).origin;
    expect(w.requests.filter((u) => !u.startsWith(origin + "/"))).toEqual([]);
    expect(w.problems).toEqual([]);
  });

  test("shows hostile strings from the API as text and runs none of them", async () => {
    const vip = threeServerVip("CTERA_Portal", BASE);
    const evil = `<img src=x onerror="window.__pwned=1"><b>bold</b>`;
    vip.healthHost = evil;
    vip.servers[1].state = "DOWN";
    vip.servers[1].health = "DOWN";
    vip.servers[1].lastCheck = { ok: false, detail: evil, latencyMs: 2, at: new Date().toISOString() };
    fake = await startFakeAdmin({
      address: `${BASE}.1`,
      token: TOKEN,
      vips: [vip],
      events: [{ at: new Date().toISOString(), vip: "CTERA_Portal", server: "portal-2", from: "UP", to: "DOWN", reason: evil }],
    });
    const w = await browser.newPage();
    await w.page.goto(fake.url);
    const row = w.page.locator('tr[data-server="CTERA_Portal/portal-2"]');
    await row.locator(".lastcheck").getByText(evil, { exact: false }).waitFor();
    await w.page.locator("#events-body").getByText(evil).waitFor();
    const found = await w.page.evaluate(() => ({
      imgs: document.querySelectorAll("main img").length,
      bolds: document.querySelectorAll("main b").length,
      pwned: (window as unknown as { __pwned?: number }).__pwned,
    }));
    await screenshot(w.page, "page-hostile-strings");
    await w.page.close();
    expect(found).toEqual({ imgs: 0, bolds: 0, pwned: undefined });
  });

  test("gives every state its own colour and its own word", async () => {
    const vip = threeServerVip("CTERA_Portal", BASE);
    vip.servers.push({ ...vip.servers[2], name: "portal-4", address: `${BASE}.14` });
    const states = ["UP", "DOWN", "DRAIN", "HALT"] as const;
    states.forEach((s, i) => {
      vip.servers[i].state = s;
      vip.servers[i].health = s === "DOWN" ? "DOWN" : "UP";
    });
    fake = await startFakeAdmin({ address: `${BASE}.1`, token: TOKEN, vips: [vip] });
    const w = await browser.newPage();
    await w.page.goto(fake.url);
    await w.page.locator('tr[data-server="CTERA_Portal/portal-4"] .state-text').getByText("HALT").waitFor();
    const seen = await w.page.evaluate(() =>
      Array.from(document.querySelectorAll("tr.server")).map((tr) => {
        const badge = tr.querySelector(".badge") as HTMLElement;
        return { word: badge.querySelector(".state-text")!.textContent, colour: getComputedStyle(badge).backgroundColor };
      }),
    );
    await screenshot(w.page, "page-all-states");
    await w.page.close();
    expect(seen.map((s) => s.word)).toEqual(["UP", "DOWN", "DRAIN", "HALT"]);
    expect(new Set(seen.map((s) => s.colour)).size).toBe(4);
  });

  test("draws each server's throughput from the byte counters of consecutive polls", async () => {
    const vip = threeServerVip("CTERA_Portal", BASE);
    fake = await startFakeAdmin({ address: `${BASE}.1`, token: TOKEN, vips: [vip] });
    const grow = setInterval(() => {
      vip.servers[0].bytesOut += 3 * 1024 * 1024;
      vip.servers[0].bytesIn += 64 * 1024;
    }, 250);
    try {
      const w = await browser.newPage();
      await w.page.goto(fake.url);
      const line = w.page.locator('tr[data-server="CTERA_Portal/portal-1"] svg.spark polyline');
      await w.page.waitForFunction(
        () => {
          const pl = document.querySelector('tr[data-server="CTERA_Portal/portal-1"] svg.spark polyline');
          return !!pl && (pl.getAttribute("points") ?? "").trim().split(/\s+/).length >= 3;
        },
        undefined,
        { timeout: 15_000 },
      );
      const points = ((await line.getAttribute("points")) ?? "").trim().split(/\s+/);
      const rate = await w.page.locator('tr[data-server="CTERA_Portal/portal-1"] .tp span').textContent();
      const idleRate = await w.page.locator('tr[data-server="CTERA_Portal/portal-2"] .tp span').textContent();
      const label = await w.page.locator('tr[data-server="CTERA_Portal/portal-1"] svg.spark').getAttribute("aria-label");
      await screenshot(w.page, "page-sparklines");
      await w.page.close();
      expect(points.length).toBeGreaterThanOrEqual(3);
      expect(rate).toMatch(/[KM]iB\/s$/);
      expect(idleRate).toBe("0 B/s");
      expect(label).toMatch(/^Throughput over the last .+: now .+, peak .+/);
    } finally {
      clearInterval(grow);
    }
  });

  test("at phone width (375 px) long names and details wrap instead of pushing the page sideways", async () => {
    const vip = threeServerVip("CTERA_Portal_Web_1_with_a_long_name", BASE);
    vip.healthHost = "global.a-very-long-dns-suffix-that-does-not-fit-on-a-phone.example.test";
    vip.servers[0].name = "portal-server-with-a-long-name-01";
    vip.servers[1].state = "DOWN";
    vip.servers[1].lastCheck = { ok: false, detail: "ECONNREFUSED 127.0.31.12:443 connect failed x2 (no answer)", latencyMs: 0.4, at: new Date().toISOString() };
    fake = await startFakeAdmin({
      address: `${BASE}.1`,
      token: TOKEN,
      vips: [vip],
      events: [{ at: new Date().toISOString(), vip: vip.name, server: "portal-2", from: "UP", to: "DOWN", reason: "ECONNREFUSED x2 on the health check of port 443" }],
    });
    const w = await browser.newPage({ width: 375, height: 812 });
    await w.page.goto(fake.url);
    await w.page.locator('tr.server .state-text').getByText("DOWN").waitFor();
    const widths = await w.page.evaluate(() => ({
      doc: document.documentElement.scrollWidth,
      view: document.documentElement.clientWidth,
      widest: Math.max(...Array.from(document.querySelectorAll("main *")).filter((e) => !e.closest(".scroll")).map((e) => e.getBoundingClientRect().right)),
    }));
    await screenshot(w.page, "page-phone-long-strings");
    await w.page.close();
    expect(widths.doc).toBeLessThanOrEqual(widths.view);
    expect(widths.widest).toBeLessThanOrEqual(widths.view);
  });

  test("every control is labelled, and at phone width the server cards still read as a table of rows and cells", async () => {
    fake = await startFakeAdmin({ address: `${BASE}.1`, token: TOKEN, vips: [threeServerVip("CTERA_Portal", BASE)] });
    const w = await browser.newPage({ width: 375, height: 812 });
    await w.page.goto(fake.url);
    await w.page.locator('tr[data-server="CTERA_Portal/portal-3"] .state-text').getByText("UP").waitFor();
    const unlabelled = await w.page.evaluate(() =>
      Array.from(document.querySelectorAll("button, input")).filter((c) => {
        if (c instanceof HTMLInputElement) return !c.labels || c.labels.length === 0;
        return !(c.getAttribute("aria-label") || (c.textContent ?? "").trim());
      }).map((c) => c.outerHTML),
    );
    const table = w.page.getByRole("table", { name: "Real servers of CTERA_Portal" });
    const rows = await table.getByRole("row").count();
    const header = await table.getByRole("rowheader", { name: /portal-2/ }).count();
    const cells = await table.getByRole("row", { name: /portal-2/ }).getByRole("cell").count();
    const drain = await w.page.getByRole("button", { name: "Drain portal-2 (CTERA_Portal)" }).count();
    await screenshot(w.page, "page-phone-roles");
    await w.page.close();
    expect(unlabelled).toEqual([]);
    expect(rows).toBe(4); // the header row and three servers
    expect(header).toBe(1);
    expect(cells).toBe(6);
    expect(drain).toBe(1);
  });

  test("with three VIPs sharing server names, each VIP gets its own section and each action goes to its own VIP", async () => {
    const names = ["CTERA_Portal_Web_1", "CTERA_Portal_Web_2", "CTERA_Portal_CTTP"];
    const vips = names.map((n) => threeServerVip(n, BASE));
    vips[0].mode = vips[1].mode = "http";
    vips[0].listeners = [
      { address: `${BASE}.10`, port: 80, tls: false, redirectToHttpsPort: 443 },
      { address: `${BASE}.10`, port: 443, tls: true, redirectToHttpsPort: null },
    ];
    fake = await startFakeAdmin({ address: `${BASE}.1`, token: TOKEN, vips });
    const w = await browser.newPage();
    await w.page.goto(fake.url);
    await w.page.locator('tr[data-server="CTERA_Portal_CTTP/portal-3"] .state-text').getByText("UP").waitFor();
    await w.page.getByLabel("Admin token").fill(TOKEN);
    await w.page.getByRole("button", { name: "Drain portal-2 (CTERA_Portal_CTTP)" }).click();
    await w.page.getByRole("dialog").getByRole("button", { name: "Drain portal-2" }).click();
    await w.page.locator('tr[data-server="CTERA_Portal_CTTP/portal-2"] .state-text').getByText("DRAIN").waitFor();
    const sections = await w.page.locator("section[data-vip] h2").allTextContents();
    const web1 = await w.page.locator('section[data-vip="CTERA_Portal_Web_1"] dl.settings').innerText();
    const web1State = await w.page.locator('tr[data-server="CTERA_Portal_Web_1/portal-2"] .state-text').textContent();
    await screenshot(w.page, "page-three-vips");
    await w.page.close();
    expect(sections).toEqual(names);
    expect(web1).toContain(`${BASE}.10:80 → https:443, ${BASE}.10:443 TLS`);
    expect(fake.posts).toEqual([{ path: "/api/servers/CTERA_Portal_CTTP/portal-2/drain", authorization: `Bearer ${TOKEN}`, status: 200 }]);
    expect(web1State).toBe("UP");
  });

  test("without a configured token the page says it is read-only and offers no action", async () => {
    fake = await startFakeAdmin({ address: `${BASE}.1`, token: null, vips: [threeServerVip("CTERA_Portal", BASE)] });
    const w = await browser.newPage();
    await w.page.goto(fake.url);
    await w.page.locator("#token-help").getByText(/admin token configured/).waitFor();
    const buttons = w.page.locator("button.act");
    const n = await buttons.count();
    const enabled = await buttons.evaluateAll((bs) => bs.filter((b) => !(b as HTMLButtonElement).disabled).length);
    const tokenDisabled = await w.page.locator("#token").isDisabled();
    await screenshot(w.page, "page-read-only-config");
    await w.page.close();
    expect(n).toBe(9);
    expect(enabled).toBe(0);
    expect(tokenDisabled).toBe(true);
  });
});
