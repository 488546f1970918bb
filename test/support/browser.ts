/**
 * Debian's Chromium (/usr/bin/chromium; `.ci/run` installs it) driven by playwright-core, for the browser tests.
 * Without it a browser suite is skipped locally with a message, and fails in CI (CI=true), so a missing browser
 * can never pass for a green run.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { DEMO } from '../../dev/arm/emulator';
import { providerCertificate, spkiHash } from '../../dev/auth/provider';
import type { Sandbox } from '../../dev/sandbox';
import { decisionRows, rulesFor } from './approvals';
import { api, waitFor } from './sandbox';

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

/**
 * A browser with a new, empty profile (no cookies, cache or extensions from anywhere else), phone-sized. It trusts
 * the sandbox identity provider's certificate (HTTPS, as Entra ID) and no other that a public CA did not sign.
 */
export async function launchBrowser(): Promise<{ browser: BrowserContext; close: () => Promise<void> }> {
  if (missing) throw new Error(`${CHROMIUM} is missing: CI must install chromium (see .ci/run)`);
  const profile = mkdtempSync(join(tmpdir(), 'jit-chromium-'));
  const provider = spkiHash((await providerCertificate()).cert);
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: [...ARGS, `--ignore-certificate-errors-spki-list=${provider}`],
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

/**
 * On an approval page: approves with `comment`, sees the confirmation, and waits for the request to go live (its
 * rule in the subnet NSG, status `active` as `readAs` reads it). Returns the decision rows.
 */
export async function approveOnPage(
  page: Page,
  sandbox: Sandbox,
  id: string,
  comment: string,
  readAs: { user?: string | null; headers?: Record<string, string> } = {},
): Promise<Awaited<ReturnType<typeof decisionRows>>> {
  await page.locator('#approve-comment').fill(comment);
  await Promise.all([page.waitForURL(/\/api\/approvals$/), page.locator('#approve button').click()]);
  assert.match(await page.locator('h1').innerText(), /You approved the request/);
  await waitFor('the RDP rule in the subnet NSG', () => rulesFor(sandbox, DEMO.subnetNsgId, id).length === 1);
  await waitFor('the request to be active', async () => {
    const s = await api(sandbox, 'GET', `requests/${id}`, undefined, readAs.user, readAs.headers);
    return s.body.status === 'active';
  });
  const rows = await decisionRows(sandbox, id);
  assert.equal(rows.length, 1);
  return rows;
}
