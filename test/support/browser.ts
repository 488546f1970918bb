/**
 * Debian's Chromium (/usr/bin/chromium; `.ci/run` installs it) driven by playwright-core, for the browser tests.
 * Without it a browser suite is skipped locally with a message, and fails in CI (CI=true), so a missing browser
 * can never pass for a green run.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const missing = !existsSync(CHROMIUM);
const inCi = process.env.CI === 'true';

/** The `skip` option of a browser suite: a reason where Chromium is missing outside CI, else false. */
export const browserSkip: string | false =
  missing && !inCi
    ? `${CHROMIUM} not found: install it (apt-get install chromium) to run the browser tests; CI fails instead`
    : false;

/** A browser with a new, empty profile (no cookies, cache or extensions from anywhere else), phone-sized. */
export async function launchBrowser(): Promise<{ browser: BrowserContext; close: () => Promise<void> }> {
  if (missing) throw new Error(`${CHROMIUM} is missing: CI must install chromium (see .ci/run)`);
  const profile = mkdtempSync(join(tmpdir(), 'jit-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    // A phone's screen: the page must be readable there.
    viewport: { width: 390, height: 844 },
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
