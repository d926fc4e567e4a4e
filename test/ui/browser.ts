/**
 * Browser plumbing for the status-page tests: Debian's Chromium driven by playwright-core (never a
 * downloaded browser), one fresh profile per launch, screenshots under test-output/ui/.
 *
 * Missing Chromium is a failure with the fix in the message, never a silent skip.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, BrowserContext, Page, ConsoleMessage, Request } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const ROOT = resolve(__dirname, "..", "..");
export const OUTPUT_DIR = join(ROOT, "test-output", "ui");
export const DOCS_DIR = join(ROOT, "docs");

export interface Browser {
  context: BrowserContext;
  newPage(viewport?: { width: number; height: number }): Promise<WatchedPage>;
  close(): Promise<void>;
}

/** A page plus what it said: console errors (CSP violations land here), page errors, and every URL it asked for. */
export interface WatchedPage {
  page: Page;
  problems: string[];
  requests: string[];
}

export async function launchBrowser(executablePath = CHROMIUM): Promise<Browser> {
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium is not installed at ${executablePath}: the status-page browser tests need Debian's chromium. ` +
        "Install it with `apt-get install chromium` (.ci/run installs it); never `npx playwright install`.",
    );
  }
  const profile = mkdtempSync(join(tmpdir(), "ctera-lb-ui-profile-"));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 800 },
      deviceScaleFactor: 1,
      locale: "en-US",
      timezoneId: "UTC",
      reducedMotion: "reduce",
      timeout: 30_000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    async newPage(viewport) {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize(viewport);
      const problems: string[] = [];
      const requests: string[] = [];
      page.on("console", (m: ConsoleMessage) => {
        if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e: Error) => problems.push(`page error: ${e.message}`));
      page.on("request", (r: Request) => requests.push(r.url()));
      return { page, problems, requests };
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Saves a full-page screenshot as test-output/ui/<name>.png. With UPDATE_DOCS_SCREENSHOTS=1, also copies it
 * to docs/<docsName>.png (how the committed docs/status-*.png are made).
 */
export async function screenshot(page: Page, name: string, docsName?: string, opts: { fullPage?: boolean } = {}): Promise<string> {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const file = join(OUTPUT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: opts.fullPage ?? true, animations: "disabled" });
  if (docsName && process.env.UPDATE_DOCS_SCREENSHOTS === "1") {
    mkdirSync(DOCS_DIR, { recursive: true });
    copyFileSync(file, join(DOCS_DIR, `${docsName}.png`));
  }
  return file;
}

/** True when nothing inside the page is wider than the viewport (no sideways scrolling of the page). */
export async function pageOverflowsHorizontally(page: Page): Promise<{ overflow: boolean; scrollWidth: number; clientWidth: number }> {
  return page.evaluate(() => {
    const d = document.documentElement;
    return { overflow: d.scrollWidth > d.clientWidth, scrollWidth: d.scrollWidth, clientWidth: d.clientWidth };
  });
}
