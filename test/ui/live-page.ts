/**
 * The shared set-up of the live status-page tests: a LiveLab (real proxy + three sim Portals) in loopback
 * block 127.0.<third>.0/24, one Chromium, a fresh page per test, and the locators both files use.
 */
import { Browser, WatchedPage, launchBrowser } from "./browser";
import { LiveLab, startLiveLab } from "./live-lab";

export const TOKEN = "status-page-admin-token-7d1c0e5a";
/** The page polls every 1.5 s; a stopped server fails 3 checks 500 ms apart: a few seconds is plenty. */
export const POLL_LIMIT_MS = 10_000;

export function liveStatusPage(third: number) {
  let lab: LiveLab;
  let browser: Browser;
  let w: WatchedPage | undefined;

  beforeAll(async () => {
    lab = await startLiveLab({ token: TOKEN, third });
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
  const apiState = async (server: string) =>
    (await lab.status()).virtualServices[0].servers.find((s: { name: string }) => s.name === server).state as string;

  async function open(viewport?: { width: number; height: number }) {
    w = await browser.newPage(viewport);
    await w.page.goto(lab.adminUrl);
    for (const s of ["portal-1", "portal-2", "portal-3"]) await badge(s).getByText("UP", { exact: true }).waitFor({ timeout: POLL_LIMIT_MS });
    return w.page;
  }

  return { lab: () => lab, watched: () => w!, row, badge, apiState, open };
}
