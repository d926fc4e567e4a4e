/**
 * The status page against the real proxy: startProxy(render(...)) with three simulated Portals, Chromium
 * driving the page the admin address serves. Loopback block 127.0.30.0/24: VIP .10, Portals .11-.13,
 * admin 127.0.30.1. Each test leaves a screenshot in test-output/ui/; with UPDATE_DOCS_SCREENSHOTS=1 the
 * four state screenshots also go to docs/status-*.png.
 */
import { getJson, httpGet, sleep, waitFor } from "../helpers/net";
import { Browser, WatchedPage, launchBrowser, screenshot } from "./browser";
import { LiveLab, startLiveLab } from "./live-lab";

const TOKEN = "status-page-admin-token-7d1c0e5a";
const POLL_LIMIT_MS = 8000; // the page polls every 1.5 s; a stopped server fails 3 checks 500 ms apart: a few seconds is plenty

describe("status page on the live proxy", () => {
  let lab: LiveLab;
  let browser: Browser;
  let w: WatchedPage | undefined;

  beforeAll(async () => {
    lab = await startLiveLab({ token: TOKEN });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await lab?.close();
  });
  afterEach(async () => {
    await w?.page.close().catch(() => undefined);
    w = undefined;
    await lab.resetServers();
  });

  const row = (server: string) => w!.page.locator(`tr[data-server="CTERA_Portal/${server}"]`);
  const badge = (server: string) => row(server).locator(".state-text");
  const apiState = async (server: string) => (await lab.status()).virtualServices[0].servers.find((s: { name: string }) => s.name === server).state as string;

  async function open(viewport?: { width: number; height: number }) {
    w = await browser.newPage(viewport);
    await w.page.goto(lab.adminUrl);
    for (const s of ["portal-1", "portal-2", "portal-3"]) await badge(s).getByText("UP", { exact: true }).waitFor({ timeout: POLL_LIMIT_MS });
    return w.page;
  }

  test("shows the three Portal servers UP with the VIP's listeners, persistence and health-check settings", async () => {
    const page = await open();
    // Traffic while the page watches, so the throughput graphs have something to draw (bounded: 16 requests).
    await lab.traffic(16, 250);
    await waitFor(async () => ((await row("portal-1").locator("polyline").getAttribute("points")) ?? "").split(" ").length >= 4, 10_000, 200);
    const vip = page.locator('section[data-vip="CTERA_Portal"]');
    const settings = await vip.locator("dl.settings").innerText();
    const badges = await page.locator("tr.server .state-text").allTextContents();
    await screenshot(page, "status-up", "status-up");
    expect(badges).toEqual(["UP", "UP", "UP"]);
    expect(settings).toContain("127.0.30.10:443");
    expect(settings).toContain("127.0.30.10:995");
    expect(settings).toMatch(/Source IP, idle timeout 30 min/);
    expect(settings).toMatch(/HTTPS GET :443 \/admin\/startup, every 500 ms, rise 2 \/ fall 3/);
    expect(w!.problems).toEqual([]);
  });

  test("a stopped Portal shows DOWN, in red and in words, within a few seconds", async () => {
    const page = await open();
    await lab.stopPortal("portal-2");
    await badge("portal-2").getByText("DOWN", { exact: true }).waitFor({ timeout: POLL_LIMIT_MS });
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

  test("with a wrong token, drain + confirm is refused: the page shows 401 and the server stays UP", async () => {
    const page = await open();
    await page.getByLabel("Admin token").fill("not-the-right-token-at-all");
    await page.getByRole("button", { name: "Drain portal-1 (CTERA_Portal)" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Drain portal-1" }).click();
    await page.locator("#action-msg").getByText(/Refused \(401/).waitFor({ timeout: 5000 });
    const msg = await page.locator("#action-msg").innerText();
    await screenshot(page, "status-refused");
    expect(msg).toMatch(/admin token is missing or wrong, so portal-1 was not changed/);
    expect(await apiState("portal-1")).toBe("UP");
    expect(await badge("portal-1").textContent()).toBe("UP");
  });

  test("with the token, clicking Drain and confirming sets DRAIN in /api/status and on the page", async () => {
    const page = await open();
    await page.getByLabel("Admin token").fill(TOKEN);
    await page.getByRole("button", { name: "Drain portal-1 (CTERA_Portal)" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText("Open connections stay").waitFor();
    await screenshot(page, "status-confirm-dialog", undefined, { fullPage: false }); // a modal covers the viewport only
    await dialog.getByRole("button", { name: "Drain portal-1" }).click();
    await badge("portal-1").getByText("DRAIN", { exact: true }).waitFor({ timeout: POLL_LIMIT_MS });
    await page.locator("#action-msg").getByText(/is now DRAIN/).waitFor();
    await page.locator("#events-body tr").filter({ hasText: "DRAIN" }).first().waitFor({ timeout: POLL_LIMIT_MS });
    await screenshot(page, "status-drain", "status-drain");
    expect(await apiState("portal-1")).toBe("DRAIN");
  });

  test("Cancel (or Escape) in the confirmation dialog sends nothing", async () => {
    const page = await open();
    await page.getByLabel("Admin token").fill(TOKEN);
    await page.getByRole("button", { name: "Halt portal-3 (CTERA_Portal)" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("button", { name: "Halt portal-3 (CTERA_Portal)" }).click();
    await page.keyboard.press("Escape");
    await sleep(2000); // two polls: a POST, had one been sent, would have been recorded and applied
    await screenshot(page, "status-cancelled");
    const posts = w!.requests.filter((u) => u.includes("/api/servers/"));
    expect(posts).toEqual([]);
    expect(await apiState("portal-3")).toBe("UP");
  });

  test("keyboard only: Tab to the token field and to Halt, Enter, Tab to confirm, Enter halts the server", async () => {
    const page = await open();
    const focusedId = () => page.evaluate(() => document.activeElement?.id ?? "");
    // Tab from the top of the page to the token field, type the token.
    for (let i = 0; i < 20 && (await focusedId()) !== "token"; i++) await page.keyboard.press("Tab");
    expect(await focusedId()).toBe("token");
    await page.keyboard.type(TOKEN);
    // Tab on to portal-3's Halt button.
    const target = await row("portal-3").locator("button.act-halt").getAttribute("id");
    for (let i = 0; i < 40 && (await focusedId()) !== target; i++) await page.keyboard.press("Tab");
    expect(await focusedId()).toBe(target);
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    await page.keyboard.press("Enter");
    await page.getByRole("dialog").waitFor();
    expect(await focusedId()).toBe("confirm-cancel"); // the safe choice has the focus first
    await page.keyboard.press("Tab");
    expect(await focusedId()).toBe("confirm-ok");
    await page.keyboard.press("Enter");
    await badge("portal-3").getByText("HALT", { exact: true }).waitFor({ timeout: POLL_LIMIT_MS });
    await screenshot(page, "status-keyboard-halt");
    expect(await focusedId()).toBe(target); // focus is back on the button the operator used
    expect(outline).not.toBe("none");
    expect(await apiState("portal-3")).toBe("HALT");
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
