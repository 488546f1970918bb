/** The soak's judge: each invariant is caught on a snapshot that breaks it, and a clean snapshot passes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkInvariants } from '../../../bench/support/invariants';
import type { Snapshot } from '../../../bench/support/invariants';

const A = '01J00000000000000000000001';
const B = '01J00000000000000000000002';
const NSG = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg';
const rule = (id: string) => `jit-${id.toLowerCase()}`;

function clean(): Snapshot {
  return {
    requests: [
      {
        id: A,
        status: 'expired',
        approvedAt: 't1',
        activatedAt: 't2',
        expiresAt: 't3',
      },
      { id: B, status: 'failed', approvedAt: 't1', statusReason: 'no free priority' },
    ],
    grants: [
      { requestId: A, nsgId: NSG.toLowerCase(), state: 'removed' },
      { requestId: B, nsgId: NSG.toLowerCase(), state: 'removed' },
    ],
    audit: [
      { rowKey: '1', requestId: A, action: 'request.submitted' },
      { rowKey: '2', requestId: A, action: 'request.approved' },
      { rowKey: '3', requestId: A, action: 'grant.activated' },
      { rowKey: '4', requestId: A, action: 'grant.expired' },
      { rowKey: '5', requestId: B, action: 'request.submitted' },
      { rowKey: '6', requestId: B, action: 'request.approved' },
      { rowKey: '7', requestId: B, action: 'grant.failed' },
    ],
    nsgs: [{ nsgId: NSG, ruleNames: ['deny-mgmt-inbound'] }],
    accepted: [A],
  };
}

const kinds = (s: Snapshot) => checkInvariants(s).map((v) => `${v.invariant} ${v.requestId ?? ''}`);

test('a settled, consistent system breaks no invariant', () => {
  assert.deepEqual(checkInvariants(clean()), []);
});

test('a request the API accepted must exist', () => {
  const s = clean();
  s.accepted.push('01J00000000000000000000009');
  assert.deepEqual(kinds(s), ['accepted-request-exists 01J00000000000000000000009']);
});

test('every request must be in a final state', () => {
  const s = clean();
  s.requests[0]!.status = 'active';
  assert.ok(kinds(s).includes(`request-final ${A}`));
});

test("a rule of an ended grant, or of no request at all, is caught; others' rules are not", () => {
  const s = clean();
  s.nsgs[0]!.ruleNames.push(rule(A), rule('01J00000000000000000000009'), 'allow-https');
  assert.deepEqual(kinds(s), [
    `no-rule-of-ended-grant ${A}`,
    'no-rule-without-live-grant 01J00000000000000000000009',
  ]);
});

test('a live grant holding a rule with no grant row recording it is caught', () => {
  const s = clean();
  s.requests[0]!.status = 'active';
  s.grants = s.grants.filter((g) => g.requestId !== A);
  s.nsgs[0]!.ruleNames.push(rule(A));
  assert.ok(kinds(s).includes(`no-rule-without-live-grant ${A}`));
});

test('a missing, doubled or unfounded audit event is caught', () => {
  const missing = clean();
  missing.audit = missing.audit.filter((a) => a.action !== 'request.approved' || a.requestId !== A);
  assert.deepEqual(kinds(missing), [`audit-for-every-change ${A}`]);

  const doubled = clean();
  doubled.audit.push({ rowKey: '8', requestId: A, action: 'grant.activated' });
  assert.deepEqual(kinds(doubled), [`applied-at-most-once ${A}`]);

  const unfounded = clean();
  unfounded.audit.push({ rowKey: '9', requestId: B, action: 'grant.activated' });
  assert.deepEqual(kinds(unfounded), [`audit-for-every-change ${B}`]);
});

test('a grant row still applied for an ended request is caught', () => {
  const s = clean();
  s.grants[0]!.state = 'applied';
  assert.deepEqual(kinds(s), [`grant-records-match ${A}`]);
});
