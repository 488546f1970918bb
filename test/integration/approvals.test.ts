/**
 * Manual approval end to end on the sandbox: mails caught by the SMTP catcher, the link's page fetched like a mail
 * scanner would, decisions posted like the page's form does, and the results read where a person would see them
 * (request status, NSG rules, decision and audit rows, mails).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Sandbox } from '../../dev/sandbox';
import { services } from '../../shared/composition';
import { SERVICE_BUS_QUEUES } from '../../shared/names';
import { api, startSandbox, waitFor } from '../support/sandbox';
import {
  approvalMail,
  auditRows,
  decide,
  decisionRows,
  formTokenIn,
  getPage,
  linkIn,
  postDecision,
  rulesFor,
  sandboxTokens,
  visibleText,
  vmWithPolicy,
} from '../support/approvals';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';
const DAVE = 'dave@example.com';

async function ask(sandbox: Sandbox, vmId: string, extra: Record<string, unknown> = {}, user = ALICE) {
  const res = await api(
    sandbox,
    'POST',
    'requests',
    { vm: vmId, ports: [22], sourcePrefix: '203.0.113.40', duration: 'PT1H', ...extra },
    user,
  );
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
}

async function statusOf(sandbox: Sandbox, id: string, user = ALICE) {
  return (await api(sandbox, 'GET', `requests/${id}`, undefined, user)).body as {
    status: string;
    statusReason?: string;
    approvalDeadline?: string;
  };
}

const waitStatus = (sandbox: Sandbox, id: string, status: string, timeoutInMs = 20_000) =>
  waitFor(
    `request ${id} to be ${status}`,
    async () => ((await statusOf(sandbox, id)).status === status ? true : undefined),
    timeoutInMs,
  );

const decisionActions = async (sandbox: Sandbox, id: string) =>
  (await auditRows(sandbox, id))
    .map((e) => e.action)
    .filter((a) => a.startsWith('approval.a') || a.startsWith('approval.d'));

/** Asserts that a refused attempt left the request pending with no decision recorded. */
async function assertNothingChanged(sandbox: Sandbox, id: string) {
  assert.equal((await statusOf(sandbox, id)).status, 'pending-approval');
  assert.equal((await decisionRows(sandbox, id)).length, 0, 'no decision row');
  assert.deepEqual(await decisionActions(sandbox, id), [], 'no decision in the audit');
}

describe('manual approval through links in mail', () => {
  let sandbox: Sandbox;
  const logs: string[] = [];
  const tokensSeen: string[] = [];
  before(async () => {
    sandbox = await startSandbox({
      hostLog: (_level, fn, message) => logs.push(`${fn}: ${message}`),
      settings: { JIT_APPROVER_GROUP_MAILBOXES: 'ops-group=ops@example.com' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('approvers and requester are mailed; the page changes nothing; Approve opens the port', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-one', { approvers: [`user:${BOB}`, `user:${CAROL}`] });
    const id = await ask(sandbox, vm.vmId, { justification: 'deploy hotfix INC-42' });

    const mail = await approvalMail(sandbox, BOB, id);
    await approvalMail(sandbox, CAROL, id);
    for (const needle of [
      ALICE,
      'appr-one',
      '22/TCP (SSH)',
      '203.0.113.40/32',
      'for 1h',
      'deploy hotfix INC-42',
    ])
      assert.ok(mail.text.includes(needle), `the mail says ${needle}`);
    assert.ok(mail.html?.includes('deploy hotfix INC-42'));
    const waiting = await sandbox.mail.waitFor(
      'the requester is told it waits',
      (m) => m.to.includes(ALICE) && m.subject.startsWith('Waiting for approval') && m.text.includes(id),
    );
    assert.ok(
      waiting.text.includes(BOB) && waiting.text.includes(CAROL),
      'the requester learns who was asked',
    );
    assert.ok(
      !waiting.links.some((l) => l.includes('/api/approvals')),
      'the requester gets no approval link',
    );
    const { token } = linkIn(mail, 'approve');
    tokensSeen.push(token);
    assert.equal(linkIn(mail, 'deny').token, token);
    assert.ok(new URL(linkIn(mail, 'approve').url).origin === sandbox.baseUrl, 'links point at the app');

    // What a mail scanner does: fetch every link, maybe more than once. Nothing may change.
    for (const link of mail.links) {
      const res = await fetch(link);
      assert.equal(res.status, 200);
      await res.text();
    }
    const page = await getPage(sandbox, token);
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /form-action 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|script-src/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    // The token in the URL never leaves in a Referer; the origin alone does (so the form's POST has an Origin).
    assert.equal(page.headers.get('referrer-policy'), 'strict-origin');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.match(page.text, /<meta name="viewport"/);
    assert.doesNotMatch(page.text, /<script/i);
    const text = visibleText(page.text);
    for (const needle of [
      ALICE,
      'appr-one',
      '22/TCP (SSH)',
      '203.0.113.40/32',
      'deploy hotfix INC-42',
      '0 of 1',
    ])
      assert.ok(text.includes(needle), `the page shows ${needle}`);
    // What approving opens, where, and for how long from when.
    assert.match(
      text,
      /If approved, this opens 22\/TCP \(SSH\) from 203\.0\.113\.40\/32 to 10\.9\.1\.\d+ \(appr-one's private address\), with a rule in network security groups appr-subnet-nsg and appr-one-nic-nsg, for 1h from the moment it is approved\. When that time is up, the rules are removed\./,
    );
    await assertNothingChanged(sandbox, id);

    const result = await decide(sandbox, token, 'approve', 'ok for tonight');
    assert.equal(result.status, 200, result.text);
    assert.match(visibleText(result.text), /You approved the request/);
    await waitStatus(sandbox, id, 'active');
    for (const nsgId of vm.nsgIds) assert.equal(rulesFor(sandbox, nsgId, id).length, 1, `rule in ${nsgId}`);

    await sandbox.mail.waitFor(
      "the requester is told of the approval, with the approver's comment",
      (m) =>
        m.to.includes(ALICE) &&
        m.subject.startsWith('Approved') &&
        m.text.includes(id) &&
        m.text.includes(`Comment from the approver: ${BOB}: "ok for tonight"`),
    );
    // ...and reads it in the API (and so in jit status) too.
    const seen = await api(sandbox, 'GET', `requests/${id}`);
    assert.deepEqual(
      seen.body.approval.decisions.map((d: { approver: string; comment?: string }) => [
        d.approver,
        d.comment,
      ]),
      [[BOB, 'ok for tonight']],
    );
    // Carol, who did not decide, is told she need not.
    const settled = await sandbox.mail.waitFor(
      'the other approver is told it is settled',
      (m) => m.to.includes(CAROL) && m.subject.startsWith('No action needed') && m.text.includes(id),
    );
    assert.match(
      settled.text,
      /was approved \(approved by bob@example\.com\)\. Your approval link has nothing left to decide\./,
    );
    assert.ok(
      !sandbox.mail.list().some((m) => m.to.includes(BOB) && m.subject.startsWith('No action needed')),
      'the approver who decided gets no such mail',
    );
    await sandbox.mail.waitFor(
      'the requester is told access is live',
      (m) => m.to.includes(ALICE) && m.subject.startsWith('Access is live') && m.text.includes(id),
    );

    // Carol's link is now spent: her page says so, her POST is refused, nothing more happens.
    const carol = linkIn(await approvalMail(sandbox, CAROL, id), 'approve').token;
    tokensSeen.push(carol);
    const late = await getPage(sandbox, carol);
    assert.equal(late.status, 200);
    assert.equal(formTokenIn(late.text), undefined, 'no form on a decided request');
    assert.match(
      visibleText(late.text),
      /Already settled: this request is approved, and access is open \(approved by bob@example\.com\)\. There is nothing left to decide\./,
    );

    const rows = await decisionRows(sandbox, id);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.approver, BOB);
    assert.equal(rows[0]!.decision, 'approve');
    assert.equal(rows[0]!.comment, 'ok for tonight');
    const audit = await auditRows(sandbox, id);
    assert.deepEqual(
      audit.map((e) => e.action),
      [
        'request.submitted',
        'request.pending-approval',
        'approval.requested',
        'approval.approved',
        'request.approved',
        'grant.activated',
      ],
    );
    const decided = audit.find((e) => e.action === 'approval.approved')!;
    assert.equal(decided.actor, BOB);
    assert.equal(decided.clientAddress, '127.0.0.1');
    assert.match(String(decided.detail), /ok for tonight/);
    assert.ok(decided.time, 'when');
  });

  test('a denial ends the request with the reason, tells the requester, and opens nothing', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-deny', { approvers: [`user:${BOB}`, `user:${CAROL}`] });
    const id = await ask(sandbox, vm.vmId);
    const token = linkIn(await approvalMail(sandbox, BOB, id), 'deny').token;
    tokensSeen.push(token);

    const page = await getPage(sandbox, token);
    const csrf = formTokenIn(page.text)!;
    const noReason = await postDecision(sandbox, { token, csrf, decision: 'deny', comment: '  ' });
    assert.equal(noReason.status, 400);
    assert.match(visibleText(noReason.text), /required to deny/);
    await assertNothingChanged(sandbox, id);

    const reason = 'not during the <b>freeze</b>';
    const res = await postDecision(sandbox, { token, csrf, decision: 'deny', comment: reason });
    assert.equal(res.status, 200, res.text);
    assert.match(visibleText(res.text), /You denied the request/);
    const s = await statusOf(sandbox, id);
    assert.equal(s.status, 'denied');
    assert.equal(s.statusReason, `denied by ${BOB}: ${reason}`);
    const told = await sandbox.mail.waitFor(
      'the requester is told of the denial',
      (m) => m.to.includes(ALICE) && m.subject.startsWith('Denied') && m.text.includes(id),
    );
    assert.ok(told.text.includes(reason), 'the reason is in the mail');
    assert.ok(told.html?.includes('not during the &lt;b&gt;freeze&lt;/b&gt;'), 'and escaped in its HTML');
    for (const nsgId of vm.nsgIds) assert.equal(rulesFor(sandbox, nsgId, id).length, 0);

    // The other approver can no longer decide.
    const carol = linkIn(await approvalMail(sandbox, CAROL, id), 'approve').token;
    tokensSeen.push(carol);
    const carolPage = await getPage(sandbox, carol);
    assert.equal(formTokenIn(carolPage.text), undefined);
    const forged = await sandboxTokens(sandbox).issueFormToken(
      (await sandboxTokens(sandbox).verify(carol)).tokenId,
    );
    const carolPost = await postDecision(sandbox, { token: carol, csrf: forged, decision: 'approve' });
    assert.equal(carolPost.status, 409);
    assert.equal((await statusOf(sandbox, id)).status, 'denied');
    // (A quick approver may decide before the last approver is mailed, so only these two are in a fixed order.)
    assert.deepEqual(
      (await auditRows(sandbox, id))
        .map((e) => e.action)
        .filter((a) => /^(approval|request)\.denied$/.test(a)),
      ['approval.denied', 'request.denied'],
    );
  });

  test('2 of 3: a link decides once, and two last approvals at the same moment grant exactly once', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-two', {
      approvers: [`user:${BOB}`, `user:${CAROL}`, `user:${DAVE}`],
      required: 2,
    });
    const id = await ask(sandbox, vm.vmId);
    const [bob, carol, dave] = await Promise.all(
      [BOB, CAROL, DAVE].map(async (a) => linkIn(await approvalMail(sandbox, a, id), 'approve').token),
    );
    tokensSeen.push(bob!, carol!, dave!);

    const first = await getPage(sandbox, bob!);
    const bobCsrf = formTokenIn(first.text)!;
    const one = await postDecision(sandbox, { token: bob!, csrf: bobCsrf, decision: 'approve' });
    assert.equal(one.status, 200);
    assert.match(visibleText(one.text), /needs 1 more approval \(1 of 2/);
    assert.equal((await statusOf(sandbox, id)).status, 'pending-approval');

    // The same link again: refused, and still one decision.
    const replay = await postDecision(sandbox, { token: bob!, csrf: bobCsrf, decision: 'approve' });
    assert.equal(replay.status, 409);
    assert.match(visibleText(replay.text), /already decided/i);
    assert.equal((await decisionRows(sandbox, id)).length, 1);
    assert.equal((await statusOf(sandbox, id)).status, 'pending-approval');

    let applyGrants = 0;
    const count = (r: { functionName: string }) => {
      if (r.functionName === 'applyGrant') applyGrants++;
    };
    sandbox.host!.on('invocation', count);
    // Make "the same moment" certain rather than likely: each approval's write of `approved` waits (up to 10 s)
    // until the other has also read the request and is about to write. Only the ETag can now keep one out.
    const requests = services().deps.requests;
    const update = requests.update.bind(requests);
    const arrived: Array<() => void> = [];
    requests.update = async (request, etag) => {
      // (Later writes of this request, such as applyGrant's, pass straight through.)
      if (request.id === id && request.status === 'approved' && arrived.length < 2) {
        await new Promise<void>((resolve) => {
          arrived.push(resolve);
          if (arrived.length >= 2) arrived.forEach((r) => r());
          setTimeout(resolve, 10_000).unref();
        });
      }
      return update(request, etag);
    };
    try {
      const [carolPage, davePage] = await Promise.all([getPage(sandbox, carol!), getPage(sandbox, dave!)]);
      const [c, d] = await Promise.all([
        postDecision(sandbox, { token: carol!, csrf: formTokenIn(carolPage.text)!, decision: 'approve' }),
        postDecision(sandbox, { token: dave!, csrf: formTokenIn(davePage.text)!, decision: 'approve' }),
      ]);
      assert.equal(c.status, 200, c.text);
      assert.equal(d.status, 200, d.text);
      await waitStatus(sandbox, id, 'active');
      // Time for a second grant message, had one been sent, to be taken and run.
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      sandbox.host!.off('invocation', count);
      requests.update = update;
    }
    assert.equal(arrived.length, 2, 'both last approvals tried to approve the request');
    assert.equal(applyGrants, 1, 'one jit-grants message was handled');
    const audit = (await auditRows(sandbox, id)).map((e) => e.action);
    assert.equal(audit.filter((a) => a === 'request.approved').length, 1);
    assert.equal(audit.filter((a) => a === 'grant.activated').length, 1);
    assert.equal(audit.filter((a) => a === 'approval.approved').length, 3);
    for (const nsgId of vm.nsgIds)
      assert.equal(rulesFor(sandbox, nsgId, id).length, 1, `one rule in ${nsgId}`);
    const expiries = sandbox.serviceBus
      .listScheduled(SERVICE_BUS_QUEUES.expirations)
      .filter(
        (m) =>
          (m.body as { requestId?: string; kind?: string }).requestId === id &&
          !('kind' in (m.body as object)),
      );
    assert.equal(expiries.length, 1, 'one expiry scheduled');
    assert.equal((await decisionRows(sandbox, id)).length, 3);
  });

  test('the requester never approves their own request, even as an approver', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-self', { approvers: [`user:${ALICE}`, `user:${BOB}`] });
    const id = await ask(sandbox, vm.vmId);
    await approvalMail(sandbox, BOB, id);
    await sandbox.mail.waitFor('the waiting mail', (m) => m.to.includes(ALICE) && m.text.includes(id));
    assert.ok(
      !sandbox.mail
        .to(ALICE)
        .some((m) => m.text.includes(id) && m.links.some((l) => l.includes('/api/approvals'))),
      'no approval link went to the requester',
    );
    // A link naming the requester (as a policy edit or a forged mail might produce) is refused on GET and POST.
    const tokens = sandboxTokens(sandbox);
    const own = await tokens.issue(
      { requestId: id, approver: `user:${ALICE}` },
      new Date(Date.now() + 600_000),
    );
    const page = await getPage(sandbox, own);
    assert.equal(page.status, 403);
    assert.match(visibleText(page.text), /cannot decide on your own request/);
    assert.equal(formTokenIn(page.text), undefined);
    const csrf = await tokens.issueFormToken((await tokens.verify(own)).tokenId);
    const post = await postDecision(sandbox, { token: own, csrf, decision: 'approve' });
    assert.equal(post.status, 403);
    // Nor by signing in as someone the link does not name.
    const bob = linkIn(await approvalMail(sandbox, BOB, id), 'approve').token;
    tokensSeen.push(bob);
    const asAlice = await getPage(sandbox, bob, { 'x-jit-dev-user': ALICE });
    assert.equal(asAlice.status, 403);
    assert.match(
      visibleText(asAlice.text),
      /sent to bob@example.com, but you are signed in as alice@example.com/,
    );
    await assertNothingChanged(sandbox, id);
  });

  test('a policy whose only approver is the requester denies at once, saying why', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-lonely', { approvers: [`user:${ALICE}`] });
    const id = await ask(sandbox, vm.vmId);
    await waitStatus(sandbox, id, 'denied');
    assert.match(
      (await statusOf(sandbox, id)).statusReason ?? '',
      /fewer approvers other than the requester/,
    );
    await sandbox.mail.waitFor(
      'the requester is told',
      (m) => m.to.includes(ALICE) && m.subject.startsWith('Denied') && m.text.includes(id),
    );
    assert.ok(
      !sandbox.mail
        .list()
        .some((m) => m.text.includes(id) && m.links.some((l) => l.includes('/api/approvals'))),
    );
  });

  test('tampered, expired, unknown-key and reused links are refused with a clear page, and change nothing', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-tamper', {
      approvers: [`user:${BOB}`, `user:${CAROL}`],
      required: 2,
    });
    const id = await ask(sandbox, vm.vmId);
    const token = linkIn(await approvalMail(sandbox, BOB, id), 'approve').token;
    tokensSeen.push(token);
    const tokens = sandboxTokens(sandbox);
    const goodCsrf = await tokens.issueFormToken((await tokens.verify(token)).tokenId);

    // Tampered: the payload names another approver, the signature is the original one.
    const [h, p, sig] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const tampered = [
      h,
      Buffer.from(JSON.stringify({ ...payload, sub: `user:${CAROL}` })).toString('base64url'),
      sig,
    ].join('.');
    // alg "none": no signature at all.
    const none = [
      Buffer.from(JSON.stringify({ alg: 'none', typ: 'jit-approval+jwt' })).toString('base64url'),
      p,
      '',
    ].join('.');
    // Signed with a key this deployment never had.
    const { SignJWT } = await import('jose');
    const stranger = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256', kid: 'stranger', typ: 'jit-approval+jwt' })
      .sign(randomBytes(32));
    for (const [what, bad] of [
      ['tampered', tampered],
      ['alg none', none],
      ['unknown kid', stranger],
      ['truncated', token.slice(0, -5)],
      ['empty', ''],
    ] as const) {
      const page = await getPage(sandbox, bad);
      assert.equal(page.status, 400, `${what}: ${page.status}`);
      assert.match(visibleText(page.text), /This approval link is not valid.*Nothing was changed/, what);
      const post = await postDecision(sandbox, { token: bad, csrf: goodCsrf, decision: 'approve' });
      assert.equal(post.status, 400, `${what} POST`);
    }

    // Expired: genuine, but past its time.
    const expired = await tokens.issue(
      { requestId: id, approver: `user:${BOB}` },
      new Date(Date.now() - 600_000),
    );
    const late = await getPage(sandbox, expired);
    assert.equal(late.status, 410);
    assert.match(visibleText(late.text), /This approval link has expired.*Nothing was changed/);
    assert.equal(
      (await postDecision(sandbox, { token: expired, csrf: goodCsrf, decision: 'approve' })).status,
      410,
    );

    // A form token bound to another link, a forged one, and none at all: refused.
    const other = await tokens.issue(
      { requestId: id, approver: `user:${BOB}` },
      new Date(Date.now() + 600_000),
    );
    const otherCsrf = await tokens.issueFormToken((await tokens.verify(other)).tokenId);
    for (const csrf of [otherCsrf, goodCsrf.slice(0, -3) + 'AAA', '']) {
      const res = await postDecision(sandbox, { token, csrf, decision: 'approve' });
      assert.equal(res.status, 403);
      assert.match(visibleText(res.text), /decision form could not be verified/);
    }
    // Posted from another site, even with a good form token.
    const crossSite = await postDecision(
      sandbox,
      { token, csrf: goodCsrf, decision: 'approve' },
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(crossSite.status, 403);
    // An older browser that sends no Sec-Fetch-Site still names the other origin.
    const otherOrigin = await postDecision(
      sandbox,
      { token, csrf: goodCsrf, decision: 'approve' },
      { origin: 'https://evil.example' },
    );
    assert.equal(otherOrigin.status, 403);
    await assertNothingChanged(sandbox, id);

    // Reused: the first use counts, the second is refused.
    assert.equal((await decide(sandbox, token, 'approve')).status, 200);
    const again = await postDecision(sandbox, {
      token,
      csrf: goodCsrf,
      decision: 'deny',
      comment: 'changed my mind',
    });
    assert.equal(again.status, 409);
    const rows = await decisionRows(sandbox, id);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.decision, 'approve');
    assert.equal((await statusOf(sandbox, id)).status, 'pending-approval');
  });

  test('an approver removed from the policy before deciding is refused', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-removed', { approvers: [`user:${BOB}`, `user:${CAROL}`] });
    const id = await ask(sandbox, vm.vmId);
    const carol = linkIn(await approvalMail(sandbox, CAROL, id), 'approve').token;
    const bob = linkIn(await approvalMail(sandbox, BOB, id), 'approve').token;
    tokensSeen.push(carol, bob);
    const carolPage = await getPage(sandbox, carol);
    const carolCsrf = formTokenIn(carolPage.text)!;

    await services().deps.policies.upsert({
      ...vm.policy,
      approval: { ...vm.policy.approval, approvers: [`user:${BOB}`] },
    });
    const page = await getPage(sandbox, carol);
    assert.equal(page.status, 403);
    assert.match(visibleText(page.text), /no longer names/);
    const post = await postDecision(sandbox, { token: carol, csrf: carolCsrf, decision: 'approve' });
    assert.equal(post.status, 403);
    await assertNothingChanged(sandbox, id);

    assert.equal((await decide(sandbox, bob, 'approve')).status, 200);
    await waitStatus(sandbox, id, 'active');
  });

  test('an approver group: the mailbox gets the link, and only a signed-in member decides', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-group', { approvers: ['group:ops-group'] });
    const id = await ask(sandbox, vm.vmId);
    const mail = await approvalMail(sandbox, 'ops@example.com', id);
    assert.match(mail.text, /approver group ops-group/);
    const token = linkIn(mail, 'approve').token;
    tokensSeen.push(token);
    const anonymous = await getPage(sandbox, token);
    assert.equal(anonymous.status, 403);
    assert.match(visibleText(anonymous.text), /needs you to sign in/);
    const outsider = await getPage(sandbox, token, { 'x-jit-dev-user': 'mallory@example.com' });
    assert.equal(outsider.status, 403);
    assert.match(visibleText(outsider.text), /not a member of the approver group/);
    await assertNothingChanged(sandbox, id);

    const member = { 'x-jit-dev-user': 'erin@example.com', 'x-jit-dev-groups': 'ops-group' };
    const page = await getPage(sandbox, token, member);
    assert.match(visibleText(page.text), /deciding as erin@example\.com/);
    const res = await decide(sandbox, token, 'approve', '', member);
    assert.equal(res.status, 200, res.text);
    await waitStatus(sandbox, id, 'active');
    const rows = await decisionRows(sandbox, id);
    assert.equal(rows[0]!.approver, 'erin@example.com');
    assert.equal(rows[0]!.via, 'group:ops-group');
  });

  test('no decision by the deadline: approval-expired, by the scheduled message, and the requester is told', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-late', { approvers: [`user:${BOB}`], timeoutInSeconds: 3 });
    const id = await ask(sandbox, vm.vmId);
    const token = linkIn(await approvalMail(sandbox, BOB, id), 'approve').token;
    tokensSeen.push(token);
    const pending = await statusOf(sandbox, id);
    const deadlines = sandbox.serviceBus
      .listScheduled(SERVICE_BUS_QUEUES.expirations)
      .filter((m) => (m.body as { kind?: string; requestId?: string }).requestId === id);
    assert.equal(deadlines.length, 1);
    assert.deepEqual(deadlines[0]!.body, {
      kind: 'approval-deadline',
      requestId: id,
      deadline: pending.approvalDeadline,
    });
    assert.equal(deadlines[0]!.scheduledEnqueueTime.toISOString(), pending.approvalDeadline);

    await waitStatus(sandbox, id, 'approval-expired');
    const expired = (await auditRows(sandbox, id)).find((e) => e.action === 'request.approval-expired');
    assert.equal(expired?.actor, 'system:approval-deadline');
    await sandbox.mail.waitFor(
      'the requester is told nobody decided',
      (m) => m.to.includes(ALICE) && m.subject.startsWith('No decision in time') && m.text.includes(id),
    );
    // The link no longer decides anything.
    const csrf = await sandboxTokens(sandbox).issueFormToken(
      (await sandboxTokens(sandbox).verify(token)).tokenId,
    );
    const post = await postDecision(sandbox, { token, csrf, decision: 'approve' });
    assert.ok([409, 410].includes(post.status), `refused (${post.status})`);
    assert.equal((await decisionRows(sandbox, id)).length, 0);
    for (const nsgId of vm.nsgIds) assert.equal(rulesFor(sandbox, nsgId, id).length, 0);
  });

  test('logs and audit never hold a link token', async () => {
    assert.ok(tokensSeen.length >= 10);
    const rows: unknown[] = [];
    for await (const e of sandbox.table('JitAudit').listEntities()) rows.push(e);
    for await (const e of sandbox.table('JitApprovals').listEntities()) rows.push(e);
    const stored = JSON.stringify(rows);
    const logged = logs.join('\n');
    assert.ok(logged.includes('approval.'), 'the approval flow did log');
    for (const t of tokensSeen) {
      // The signature part is what makes a token usable; none of it may be written anywhere.
      const signature = t.split('.')[2]!;
      assert.ok(!stored.includes(signature), 'no token in the tables');
      assert.ok(!logged.includes(signature), 'no token in the logs');
    }
  });

  test('key rotation: a link signed with the previous key still works; an unknown kid does not', async () => {
    const vm = await vmWithPolicy(sandbox, 'appr-rotate', { approvers: [`user:${BOB}`] });
    const id = await ask(sandbox, vm.vmId);
    const oldToken = linkIn(await approvalMail(sandbox, BOB, id), 'approve').token;
    const oldKey = sandbox.settings.JIT_APPROVAL_KEY!;
    const oldKid = oldKey.split(':')[0]!;

    await sandbox.stopHost();
    sandbox.settings.JIT_APPROVAL_KEY = `rotated:${randomBytes(32).toString('base64')}`;
    sandbox.settings.JIT_APPROVAL_KEY_PREVIOUS = oldKey;
    await sandbox.startHost();

    // A token the old key signed but naming an unknown kid is refused, so the kid is what picks the key.
    const { SignJWT } = await import('jose');
    const [, p] = oldToken.split('.');
    const wrongKid = await new SignJWT(
      JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>,
    )
      .setProtectedHeader({ alg: 'HS256', kid: 'retired', typ: 'jit-approval+jwt' })
      .sign(Buffer.from(oldKey.slice(oldKid.length + 1), 'base64'));
    const refused = await getPage(sandbox, wrongKid);
    assert.equal(refused.status, 400);
    await assertNothingChanged(sandbox, id);

    const res = await decide(sandbox, oldToken, 'approve');
    assert.equal(res.status, 200, res.text);
    await waitStatus(sandbox, id, 'active');

    // New links are signed with the new key.
    const next = await ask(sandbox, vm.vmId, { sourcePrefix: '203.0.113.41' });
    const fresh = linkIn(await approvalMail(sandbox, BOB, next), 'approve').token;
    const header = JSON.parse(Buffer.from(fresh.split('.')[0]!, 'base64url').toString()) as {
      kid: string;
      alg: string;
    };
    assert.deepEqual([header.kid, header.alg], ['rotated', 'HS256']);
  });
});
