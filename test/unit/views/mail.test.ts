import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AccessRequest } from '../../../shared/domain/types';
import { PAGE_STYLE_SOURCE, decisionPage, errorPage, resultPage } from '../../../shared/views/approvalPage';
import { approverMail, requesterMail } from '../../../shared/views/mail';

const HOSTILE = `<script>alert("x")</script> & <img src=x onerror=alert(1)> "quoted" 'single'`;

const request = (over: Partial<AccessRequest> = {}): AccessRequest => ({
  id: '01JREQUEST0000000000000000',
  requester: 'alice@example.com',
  vmId: '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/demo-win',
  ports: [3389, 8080],
  protocol: 'Tcp',
  sourcePrefix: '203.0.113.7/32',
  durationInSeconds: 5400,
  justification: HOSTILE,
  status: 'pending-approval',
  policyScope: '/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/demo-rg',
  approvalMode: 'manual',
  createdAt: '2030-01-01T10:00:00.000Z',
  updatedAt: '2030-01-01T10:00:00.000Z',
  approvalDeadline: '2030-01-01T11:00:00.000Z',
  ...over,
});

/** No markup from user input survives into HTML: every `<` it had is escaped. */
function assertEscaped(html: string) {
  assert.ok(!html.includes('<script'), 'no script element');
  assert.ok(!html.includes('<img'), 'no injected element');
  assert.ok(
    html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'),
    'the markup is shown as text',
  );
  assert.ok(html.includes('&amp; &lt;img src=x onerror=alert(1)&gt;'));
  assert.ok(html.includes('&#39;single&#39;'));
}

test('the approver mail says who asks for what, from where, for how long and why, with both links', () => {
  const m = approverMail({
    request: request(),
    to: 'bob@example.com',
    approveUrl: 'https://jit.example.com/api/approvals?token=abc&intent=approve',
    denyUrl: 'https://jit.example.com/api/approvals?token=abc&intent=deny',
    required: 2,
    approverCount: 3,
    expiresAt: '2030-01-01T11:00:00.000Z',
  });
  assert.deepEqual(m.to, ['bob@example.com']);
  assert.equal(m.subject, 'Approve access? alice@example.com asks for 3389/TCP (RDP), 8080/TCP on demo-win');
  for (const needle of [
    'alice@example.com',
    'demo-win (resource group demo-rg',
    '3389/TCP (RDP), 8080/TCP',
    '203.0.113.7/32',
    '1h30m',
    HOSTILE,
    '2 different approvers must approve (of 3',
    'Approve: https://jit.example.com/api/approvals?token=abc&intent=approve',
    'Deny:    https://jit.example.com/api/approvals?token=abc&intent=deny',
    '2030-01-01 11:00:00 UTC',
  ])
    assert.ok(m.text.includes(needle), `text has ${needle}`);
  assertEscaped(m.html);
  assert.ok(m.html.includes('href="https://jit.example.com/api/approvals?token=abc&amp;intent=approve"'));
  assert.ok(m.html.includes('name="viewport"'));
});

test('a subject never spans lines, whatever the request holds', () => {
  const m = requesterMail(request({ status: 'denied', requester: 'a@example.com\r\nBcc: x@evil.example' }));
  assert.ok(m && !/[\r\n]/.test(m.subject));
});

test('the requester hears of each outcome, with the reason escaped', () => {
  const denied = requesterMail(
    request({ status: 'denied', statusReason: `denied by bob@example.com: ${HOSTILE}` }),
  )!;
  assert.match(denied.subject, /^Denied: /);
  assert.ok(denied.text.includes(`Reason: denied by bob@example.com: ${HOSTILE}`));
  assertEscaped(denied.html);
  const live = requesterMail(request({ status: 'active', expiresAt: '2030-01-01T12:30:00.000Z' }))!;
  assert.match(live.text, /open until 2030-01-01 12:30:00 UTC/);
  assert.match(requesterMail(request({ status: 'approval-expired' }))!.subject, /^No decision in time/);
  assert.match(
    requesterMail(request({ status: 'expired', endedAt: '2030-01-01T12:30:00.000Z' }))!.subject,
    /^Access ended/,
  );
  assert.equal(requesterMail(request({ status: 'submitted' })), undefined);
});

test('the pages escape what the request holds, carry no script, and their style matches the CSP hash', () => {
  const page = decisionPage({
    request: request(),
    decider: 'bob@example.com',
    approvals: 1,
    required: 2,
    form: { token: 'tok"en', formToken: 'f<orm' },
  });
  assertEscaped(page);
  assert.ok(page.includes('value="tok&quot;en"') && page.includes('value="f&lt;orm"'));
  assert.ok(page.includes('action="approvals"') && page.includes('method="post"'));
  assert.match(page, /<textarea id="deny-comment" name="comment" required/);
  const style = /<style>([\s\S]*?)<\/style>/.exec(page)?.[1] ?? '';
  assert.equal(`'sha256-${createHash('sha256').update(style).digest('base64')}'`, PAGE_STYLE_SOURCE);

  const result = resultPage({
    request: request({ status: 'denied', statusReason: HOSTILE }),
    decision: 'deny',
    decider: 'bob@example.com',
    approvals: 0,
    required: 1,
  });
  assertEscaped(result);
  const error = errorPage('This approval link is not valid', HOSTILE, true);
  assert.ok(!error.includes('<script') && error.includes('Nothing was changed.'));
});
