import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureReasonCode, signalsOfReconcile, signalsOfTransition } from '../../../shared/domain/signals';
import type { AccessRequest } from '../../../shared/domain/types';

const base: AccessRequest = {
  id: 'R1',
  requester: 'alice@example.com',
  vmId: '/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/VM1',
  ports: [22],
  protocol: 'Tcp',
  sourcePrefix: '203.0.113.7/32',
  durationInSeconds: 600,
  status: 'active',
  policyScope: '/subscriptions/s/resourcegroups/rg',
  approvalMode: 'manual',
  createdAt: '2026-03-14T10:00:00.000Z',
  updatedAt: '2026-03-14T10:05:00.000Z',
  approvedAt: '2026-03-14T10:04:00.000Z',
  activatedAt: '2026-03-14T10:04:03.500Z',
  expiresAt: '2026-03-14T10:14:03.500Z',
};
const named = (calls: ReturnType<typeof signalsOfTransition>) => calls.map((c) => `${c.kind}:${c.name}`);

test('live access: opened, counted, and its latency measured from the approval (or a later start)', () => {
  const calls = signalsOfTransition('approved', base, 'system:grant');
  assert.deepEqual(named(calls), [
    'event:jit.request.changed',
    'event:jit.grant.opened',
    'add:jit.grants.opened',
    'record:jit.grant.open_latency',
  ]);
  assert.equal(calls[3]!.kind === 'record' && calls[3]!.value, 3.5);
  assert.equal(calls[1]!.attributes.vm, base.vmId.toLowerCase());
  const scheduled = signalsOfTransition('approved', { ...base, startAt: '2026-03-14T10:04:02.000Z' }, 'x');
  assert.equal(scheduled[3]!.kind === 'record' && scheduled[3]!.value, 1.5);
});

test('an end: lag past expiry for an expiry; a person who revoked is named in the event, not in the metric', () => {
  const expired = signalsOfTransition(
    'active',
    { ...base, status: 'expired', endedAt: '2026-03-14T10:16:03.500Z' },
    'system:reconciler',
  );
  assert.deepEqual(named(expired), [
    'event:jit.request.changed',
    'event:jit.grant.closed',
    'add:jit.grants.closed',
    'record:jit.grant.close_lag',
  ]);
  assert.equal(expired[1]!.attributes.closeLagInSeconds, 120);
  assert.deepEqual(expired[3]!.attributes, { closedBy: 'system:reconciler' });

  const revoked = signalsOfTransition(
    'active',
    { ...base, status: 'revoked', endedAt: base.updatedAt },
    'bob@example.com',
  );
  assert.equal(revoked[1]!.attributes.closedBy, 'bob@example.com');
  assert.deepEqual(revoked[2]!.attributes, { status: 'revoked', closedBy: 'person' });
  // Cancelled before it went live: nothing was open, nothing closed.
  const cancelled = signalsOfTransition(
    'scheduled',
    { ...base, status: 'revoked', activatedAt: undefined },
    'bob',
  );
  assert.deepEqual(named(cancelled), ['event:jit.request.changed']);
});

test('a failure is counted by a reason code; the reason itself goes in the event', () => {
  const calls = signalsOfTransition(
    'approved',
    {
      ...base,
      status: 'failed',
      statusReason: 'no free priority in 1000-1999 in /subscriptions/s/nsg (999 rules)',
    },
    'system:grant',
  );
  assert.deepEqual(calls[2]!.attributes, { reasonCode: 'priority-band-full' });
  assert.match(String(calls[1]!.attributes.reason), /no free priority/);
  assert.equal(
    failureReasonCode('the grant expired before its rules could be written'),
    'expired-before-apply',
  );
  assert.equal(failureReasonCode('gave up writing rule jit-x to nsg after 8 attempts: 409'), 'arm-refused');
  assert.equal(failureReasonCode('the VM was not found'), 'vm-not-found');
  assert.equal(failureReasonCode('something new'), 'other');
});

test('a reconciler run: one event, and a repairs count per kind it repaired', () => {
  const calls = signalsOfReconcile({
    closedExpired: 2,
    failedStuck: 0,
    redriven: 1,
    approvalsExpired: 0,
    leftoversRemoved: 0,
    orphansRemoved: 3,
    baselinesRestored: 0,
    rulesRewritten: 0,
    driftFound: 1,
    errors: 0,
    armCalls: 12,
    budgetSpent: false,
  });
  assert.deepEqual(
    calls.map((c) => (c.kind === 'event' ? c.name : `${c.name} ${JSON.stringify(c.attributes)} ${c.value}`)),
    [
      'jit.reconcile.completed',
      'jit.reconcile.repairs {"kind":"closed-expired"} 2',
      'jit.reconcile.repairs {"kind":"redriven"} 1',
      'jit.reconcile.repairs {"kind":"orphan-removed"} 3',
      'jit.reconcile.drift {} 1',
    ],
  );
});
