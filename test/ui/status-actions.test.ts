/**
 * The status page against the real proxy, what an operator does with it: drain / halt with the token, the
 * confirmation dialog, refusals, keyboard-only use. startProxy(render(...)) with three simulated Portals;
 * loopback block 127.0.32.0/24: VIP .10, Portals .11-.13, admin 127.0.32.1. Each test leaves a screenshot
 * in test-output/ui/; with UPDATE_DOCS_SCREENSHOTS=1 the drain screenshot also goes to docs/status-drain.png.
 */
import { sleep } from "../helpers/net";
import { recordMeasurement, screenshot } from "./browser";
import { POLL_LIMIT_MS, TOKEN, liveStatusPage } from "./live-page";

describe("status page on the live proxy: operator actions", () => {
  const { watched, row, badge, apiState, open } = liveStatusPage(32);

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
    const t0 = Date.now();
    await dialog.getByRole("button", { name: "Drain portal-1" }).click();
    await badge("portal-1").getByText("DRAIN", { exact: true }).waitFor({ timeout: POLL_LIMIT_MS });
    recordMeasurement("drain confirmed -> page shows DRAIN (ms)", Date.now() - t0);
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
    await sleep(1600); // more than one poll: a POST, had one been sent, would have been recorded and applied
    await screenshot(page, "status-cancelled");
    const posts = watched().requests.filter((u) => u.includes("/api/servers/"));
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
});
