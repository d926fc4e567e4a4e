/**
 * The status page against the real proxy, what it shows: startProxy(render(...)) with three simulated
 * Portals, Chromium driving the page the admin address serves. Loopback block 127.0.30.0/24: VIP .10,
 * Portals .11-.13, admin 127.0.30.1 (the actions are in status-actions.test.ts, block 127.0.32.0/24).
 * Each test leaves a screenshot in test-output/ui/; with UPDATE_DOCS_SCREENSHOTS=1 the up, down and phone
 * screenshots also go to docs/status-*.png.
 */
import { waitFor } from "../helpers/net";
import { recordMeasurement, screenshot } from "./browser";
import { POLL_LIMIT_MS, TOKEN, liveStatusPage } from "./live-page";

describe("status page on the live proxy: what it shows", () => {
  const { lab, watched, row, badge, apiState, open } = liveStatusPage(30);

  test("shows the three Portal servers UP with the VIP's listeners, persistence and health-check settings", async () => {
    const page = await open();
    // Traffic while the page watches, so the throughput graphs have something to draw (bounded: 12 requests).
    await lab().traffic(12, 200);
    await waitFor(async () => ((await row("portal-1").locator("polyline").getAttribute("points")) ?? "").split(" ").length >= 3, 10_000, 200);
    const vip = page.locator('section[data-vip="CTERA_Portal"]');
    const settings = await vip.locator("dl.settings").innerText();
    const badges = await page.locator("tr.server .state-text").allTextContents();
    await screenshot(page, "status-up", "status-up");
    expect(badges).toEqual(["UP", "UP", "UP"]);
    expect(settings).toContain("127.0.30.10:443");
    expect(settings).toContain("127.0.30.10:995");
    expect(settings).toMatch(/Source IP, idle timeout 30 min/);
    expect(settings).toMatch(/HTTPS GET :443 \/admin\/startup, every 500 ms, rise 2 \/ fall 3/);
    expect(watched().problems).toEqual([]);
  });

  test("a stopped Portal shows DOWN, in red and in words, within a few seconds", async () => {
    const page = await open();
    const t0 = Date.now();
    await lab().stopPortal("portal-2");
    await badge("portal-2").getByText("DOWN", { exact: true }).waitFor({ timeout: POLL_LIMIT_MS });
    recordMeasurement("portal stopped -> page shows DOWN (ms)", Date.now() - t0);
    await page.locator("#events-body tr").filter({ hasText: "portal-2" }).first().waitFor({ timeout: POLL_LIMIT_MS });
    const colour = await row("portal-2").locator(".badge").evaluate((b) => getComputedStyle(b).backgroundColor);
    const others = await Promise.all(["portal-1", "portal-3"].map((s) => badge(s).textContent()));
    const check = await row("portal-2").locator(".lastcheck").innerText();
    await screenshot(page, "status-down", "status-down");
    expect(colour).toBe("rgb(255, 235, 233)");
    expect(others).toEqual(["UP", "UP"]);
    expect(check).toMatch(/^✕/);
  });

  test("without a token the actions are disabled with the reason, and the API refuses a tokenless drain", async () => {
    const page = await open();
    const disabled = await page.locator("button.act").evaluateAll((bs) => bs.every((b) => (b as HTMLButtonElement).disabled));
    const help = await page.locator("#token-help").innerText();
    // The same request the drain button would send, minus the header only the token provides.
    const status = await page.evaluate(async () => (await fetch("api/servers/CTERA_Portal/portal-1/drain", { method: "POST" })).status);
    await screenshot(page, "status-read-only");
    expect(disabled).toBe(true);
    expect(help).toMatch(/Read-only until you paste the admin token/);
    expect(status).toBe(401);
    expect(await apiState("portal-1")).toBe("UP");
  });

  test("at phone width (375 px) the server table becomes cards: no sideways scrolling", async () => {
    const page = await open({ width: 375, height: 812 });
    await page.getByLabel("Admin token").fill(TOKEN);
    await page.getByLabel("Admin token").blur();
    const m = await page.evaluate(() => {
      const table = document.querySelector("table.servers") as HTMLElement;
      const panel = table.closest("section") as HTMLElement;
      return {
        doc: document.documentElement.scrollWidth,
        view: document.documentElement.clientWidth,
        table: table.getBoundingClientRect().right,
        panel: panel.getBoundingClientRect().right,
        cardLabels: getComputedStyle(table.querySelector("td.state")!, "::before").content,
      };
    });
    await screenshot(page, "status-phone", "status-phone");
    expect(m.doc).toBeLessThanOrEqual(m.view);
    expect(m.table).toBeLessThanOrEqual(m.panel);
    expect(m.cardLabels).toBe('"State"');
  });
});
