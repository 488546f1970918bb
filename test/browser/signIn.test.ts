/**
 * An approver who is not signed in, in a real browser, with App Service Authentication in front of the app as
 * infra/ deploys it (the sandbox's `easyauth` mode): the link from the caught mail leads to the sign-in page of the
 * (local) identity provider, and after signing in the approver lands on the request's page and approves it; the
 * request goes live. A guest whose mail address is the approver's UPN gets no form.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { approvalMail, decisionRows, linkIn } from '../support/approvals';
import { approveOnPage, browserSkip, launchBrowser } from '../support/browser';
import { api, startSandbox } from '../support/sandbox';

const ALICE = 'alice@example.com';
const APPROVER = 'approver@example.com';

describe('an approver who is not signed in yet (easyauth)', { skip: browserSkip }, () => {
  let sandbox: Sandbox;
  let alice: { cookie: string };
  const browsers: Array<() => Promise<void>> = [];

  before(async () => {
    sandbox = await startSandbox({ auth: 'easyauth' });
    alice = { cookie: await sandbox.identity.session(ALICE) };
  });
  after(async () => {
    for (const close of browsers) await close();
    await sandbox?.stop();
  });

  /** A fresh browser: nobody is signed in on it. */
  async function freshPage(): Promise<{ page: Page; browser: BrowserContext }> {
    const { browser, close } = await launchBrowser();
    browsers.push(close);
    return { page: await browser.newPage(), browser };
  }

  async function askForRdp(sourcePrefix: string): Promise<string> {
    const res = await api(
      sandbox,
      'POST',
      'requests',
      { vm: DEMO.windowsVm.id, ports: [3389], sourcePrefix, duration: 'PT30M', justification: 'patch night' },
      null,
      alice,
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  }

  /** The provider's sign-in form, as a person fills it in. */
  async function signIn(page: Page, login: string): Promise<void> {
    await page.waitForSelector('input[name="login"]');
    assert.equal(new URL(page.url()).origin, new URL(sandbox.identity.provider!.issuer).origin);
    await page.fill('input[name="login"]', login);
    await page.fill('input[name="password"]', 'any password');
    await Promise.all([page.waitForURL(/\/api\/approvals\?token=/), page.click('button[type="submit"]')]);
  }

  test('opens the link from the mail, signs in at the provider, lands on the page, approves: the port opens', async () => {
    const id = await askForRdp('203.0.113.60');
    const { url } = linkIn(await approvalMail(sandbox, APPROVER, id), 'approve');
    const { page } = await freshPage();

    await page.goto(url);
    await signIn(page, APPROVER);
    // Back on the very link, now signed in: the request, and the decision forms.
    assert.equal(page.url().split('#')[0], url.split('#')[0]);
    assert.equal(await page.title(), `Access request from ${ALICE}`);
    assert.ok((await page.locator('main').innerText()).includes('demo-win'));
    assert.equal((await decisionRows(sandbox, id)).length, 0, 'opening the page decided nothing');

    const rows = await approveOnPage(page, sandbox, id, 'signed in and fine', { user: null, headers: alice });
    assert.equal(rows[0]!.approverName, APPROVER);
  });

  test('a guest whose mail address is the approver’s UPN signs in and is refused the decision', async () => {
    const id = await askForRdp('203.0.113.61');
    const { url } = linkIn(await approvalMail(sandbox, APPROVER, id), 'approve');
    const { page } = await freshPage();
    await page.goto(url);
    await signIn(page, 'mallory@fabrikam.example');
    assert.match(await page.locator('main').innerText(), /this link was sent to approver@example\.com/);
    assert.equal(await page.locator('form').count(), 0);
    assert.equal((await decisionRows(sandbox, id)).length, 0);
  });
});
