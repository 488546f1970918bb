/**
 * An approver in a real browser (headless Chromium through playwright-core): opens the link from the caught mail,
 * reads the request, presses Approve or Deny, and the outcome shows in the NSG. Runs the sandbox on free ports.
 *
 * Chromium is Debian's (/usr/bin/chromium; `.ci/run` installs it). Without it the suite is skipped locally with
 * a message, and fails in CI (CI=true), so a missing browser can never pass for a green run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { DEMO } from '../../dev/arm/emulator';
import { DEMO_APPROVERS } from '../../dev/demoPolicies';
import type { Sandbox } from '../../dev/sandbox';
import { api, startSandbox } from '../support/sandbox';
import { approvalMail, decisionRows, linkIn, rulesFor } from '../support/approvals';
import { approveOnPage, browserSkip, launchBrowser } from '../support/browser';

const APPROVER = DEMO_APPROVERS[0];
const HOSTILE = '<script>window.__pwned = 1</script> patch <b>night</b> & "reboot"';

describe('an approver in a real browser', { skip: browserSkip }, () => {
  let sandbox: Sandbox;
  let browser: BrowserContext;
  let closeBrowser: (() => Promise<void>) | undefined;
  const cspViolations: string[] = [];

  before(async () => {
    let launched;
    [sandbox, launched] = await Promise.all([startSandbox(), launchBrowser()]);
    browser = launched.browser;
    closeBrowser = launched.close;
  });
  after(async () => {
    await closeBrowser?.();
    await sandbox?.stop();
  });

  async function openPage(): Promise<Page> {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  }

  async function askForRdp(sourcePrefix: string): Promise<string> {
    const res = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.windowsVm.id,
      ports: [3389],
      sourcePrefix,
      duration: 'PT30M',
      justification: HOSTILE,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  }

  test('opens the link from the mail, sees the request, approves, and the port opens', async () => {
    const id = await askForRdp('203.0.113.50');
    const mail = await approvalMail(sandbox, APPROVER, id);
    const page = await openPage();

    const response = await page.goto(linkIn(mail, 'approve').url);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    assert.equal(await page.title(), 'Access request from alice@example.com');
    const text = await page.locator('main').innerText();
    for (const needle of ['alice@example.com', 'demo-win', '3389/TCP (RDP)', '203.0.113.50/32', '30m'])
      assert.ok(text.includes(needle), `the page shows ${needle}`);
    // (Expressions run in the page are strings: this project compiles without the DOM's types.)
    // The justification is text: the markup in it shows literally and created no element.
    assert.ok(text.includes(HOSTILE), 'the justification is shown as written');
    assert.equal(await page.locator('script').count(), 0);
    assert.equal(await page.locator('main b').count(), 0);
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    // The inline style was allowed by its hash (a blocked style would leave the browser's defaults)...
    assert.equal(
      await page.evaluate('getComputedStyle(document.body).backgroundColor'),
      'rgb(246, 246, 246)',
    );
    // ...and the page fits a phone's width.
    assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'));
    // The first screen of a phone (390×844) shows who asks for which VM, the ports, the source, the duration and
    // the justification, without scrolling: the link does not jump to a form.
    assert.equal(await page.evaluate('window.scrollY'), 0);
    for (const label of ['Requested by', 'VM', 'Ports', 'From address', 'For', 'Justification']) {
      const value = page
        .locator('dt', { hasText: new RegExp(`^${label}$`) })
        .locator('xpath=following-sibling::dd[1]');
      const box = await value.boundingBox();
      assert.ok(
        box && box.y >= 0 && box.y + box.height <= 844,
        `${label} is on the first screen (${JSON.stringify(box)})`,
      );
    }
    if (process.env.JIT_SCREENSHOT_DIR) {
      await page.screenshot({ path: join(process.env.JIT_SCREENSHOT_DIR, 'approval-page-390x844.png') });
    }
    assert.match(text, /If approved, this opens 3389\/TCP \(RDP\) from 203\.0\.113\.50\/32 to 10\.0\.1\.5 /);
    // Opening the page decided nothing.
    assert.equal((await decisionRows(sandbox, id)).length, 0);

    const rows = await approveOnPage(page, sandbox, id, 'go ahead');
    assert.equal(rows[0]!.approver, APPROVER);
    assert.equal(rows[0]!.comment, 'go ahead');

    // The mail itself, as a mail client shows its HTML: the justification is text there too.
    const rendered = await openPage();
    await rendered.setContent(mail.html ?? '');
    assert.ok((await rendered.locator('body').innerText()).includes(HOSTILE));
    assert.equal(await rendered.locator('script').count(), 0);
    assert.deepEqual(cspViolations, [], 'the browser reported no Content-Security-Policy violation');
  });

  test('Deny wants a reason, then ends the request and opens nothing', async () => {
    const id = await askForRdp('203.0.113.51');
    const mail = await approvalMail(sandbox, APPROVER, id);
    const page = await openPage();
    await page.goto(linkIn(mail, 'deny').url);

    // Without a reason the browser keeps the form (the field is required), and nothing is sent.
    await page.locator('#deny button').click();
    assert.equal(await page.evaluate("document.querySelector('#deny-comment').validity.valid"), false);
    assert.equal((await decisionRows(sandbox, id)).length, 0);

    await page.locator('#deny-comment').fill('change freeze this week');
    await Promise.all([page.waitForURL(/\/api\/approvals$/), page.locator('#deny button').click()]);
    assert.match(await page.locator('h1').innerText(), /You denied the request/);
    assert.match(await page.locator('main').innerText(), /change freeze this week/);
    const s = await api(sandbox, 'GET', `requests/${id}`);
    assert.equal(s.body.status, 'denied');
    assert.equal(rulesFor(sandbox, DEMO.subnetNsgId, id).length, 0);

    // Back to the same link: it shows the decision and offers no form.
    await page.goto(linkIn(mail, 'approve').url);
    assert.match(await page.locator('main').innerText(), /You denied this request/);
    assert.equal(await page.locator('form').count(), 0);
    assert.deepEqual(cspViolations, []);
  });
});
