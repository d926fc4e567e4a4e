/**
 * Browser plumbing for the status-page tests: Debian's Chromium driven by playwright-core (never a
 * downloaded browser), a fresh empty profile per launch, screenshots under test-output/ui/.
 *
 * Missing Chromium is a failure with the fix in the message, never a silent skip.
 */
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, Browser as PwBrowser, BrowserContext, Page, ConsoleMessage, Request } from "playwright-core";

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

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-crash-reporter",
  "--disable-breakpad",
  "--hide-scrollbars", // as Playwright's own headless launch does: the layout is the full 1280 / 375 px
  "--mute-audio",
  "--remote-debugging-address=127.0.0.1",
  "--remote-debugging-port=0",
];

/**
 * Starts Debian's Chromium ourselves (a new, empty --user-data-dir each time, DevTools on a loopback port)
 * and attaches playwright-core to it over CDP. Owning the process lets close() wait for its exit and
 * release every pipe, so the jest worker ends by itself (with Playwright's own launchers the worker was
 * sometimes force-killed after the tests: "A worker process has failed to exit gracefully").
 */
export async function launchBrowser(executablePath = CHROMIUM): Promise<Browser> {
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium is not installed at ${executablePath}: the status-page browser tests need Debian's chromium. ` +
        "Install it with `apt-get install chromium` (.ci/run installs it); never `npx playwright install`.",
    );
  }
  const profile = mkdtempSync(join(tmpdir(), "ctera-lb-ui-profile-"));
  // detached: Chromium and its helper processes get a process group of their own, so stop() can end
  // exactly them (and nothing else) by group id.
  const proc = spawn(executablePath, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, "about:blank"], {
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      if (proc.pid) process.kill(-proc.pid, sig);
    } catch {
      /* ESRCH: the group is gone already */
    }
  };
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) signalGroup("SIGTERM");
    const t = setTimeout(() => signalGroup("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
    signalGroup("SIGKILL"); // helpers that outlived the browser process
    proc.stderr?.destroy();
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (e) {
      process.stderr.write(`status-page tests: could not remove ${profile}: ${(e as Error).message}\n`);
    }
  };
  let browser: PwBrowser;
  let context: BrowserContext;
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let err = "";
      const timer = setTimeout(() => reject(new Error(`Chromium did not open DevTools within 30 s: ${err.slice(-500)}`)), 30_000);
      proc.stderr!.setEncoding("utf8");
      proc.stderr!.on("data", (d: string) => {
        err += d;
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`Chromium exited (${code}) before DevTools was up: ${err.slice(-500)}`));
      });
      proc.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    proc.stderr!.removeAllListeners("data");
    proc.stderr!.resume(); // keep draining Chromium's log so it never blocks on a full pipe
    browser = await chromium.connectOverCDP(endpoint, { timeout: 30_000 });
    context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      deviceScaleFactor: 1,
      locale: "en-US",
      timezoneId: "UTC",
      reducedMotion: "reduce",
    });
  } catch (e) {
    await stop();
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
      const disconnected = new Promise<void>((r) => (browser.isConnected() ? browser.once("disconnected", () => r()) : r()));
      await context.close().catch(() => undefined);
      // Ask Chromium to quit cleanly (it then ends its helper processes itself); stop() makes sure.
      try {
        const cdp = await browser.newBrowserCDPSession();
        await Promise.race([cdp.send("Browser.close"), exited, new Promise((r) => setTimeout(r, 5000).unref())]);
      } catch {
        /* already closing */
      }
      await browser.close().catch(() => undefined);
      await Promise.race([disconnected, new Promise((r) => setTimeout(r, 5000).unref())]);
      await stop();
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

/** Notes a measured duration as one line of test-output/ui/measurements.jsonl (reported, never asserted). */
export function recordMeasurement(name: string, ms: number): void {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  appendFileSync(join(OUTPUT_DIR, "measurements.jsonl"), JSON.stringify({ at: new Date().toISOString(), name, ms: Math.round(ms) }) + "\n");
}
