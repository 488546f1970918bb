import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApprovalDecision } from '../../../shared/domain/approval';
import {
  approvalRecipients,
  approvalsRequired,
  canEverBeApproved,
  countingApprovals,
  isStillApprover,
  parseApproverEntry,
  resolveDecider,
  whyNeverApproved,
} from '../../../shared/domain/approval';
import { ApproverNotAllowed, SelfApprovalRefused } from '../../../shared/domain/errors';
import type { Policy } from '../../../shared/domain/types';
import { person } from '../../support/principals';

const policy = (approvers: string[], required = 1, mode: 'auto' | 'manual' = 'manual'): Policy => ({
  scope: '/subscriptions/s/resourcegroups/rg',
  ports: [{ port: 22, protocol: 'Tcp', maxDurationInSeconds: 3600 }],
  allowedSourcePrefixes: ['my-ip'],
  requesters: ['*'],
  approval: { mode, approvers, required, timeoutInSeconds: 600 },
  justification: { required: false },
  enforce: false,
});
const decision = (approver: string, via: string, d: 'approve' | 'deny' = 'approve'): ApprovalDecision => ({
  requestId: 'r1',
  approver,
  via,
  decision: d,
  decidedAt: '2030-01-01T00:00:00Z',
  tokenId: approver,
});

test('approver entries: users and groups, normalised; "*" and empty entries never approve', () => {
  assert.deepEqual(parseApproverEntry('user:Bob@Example.com'), {
    kind: 'user',
    id: 'bob@example.com',
    entry: 'user:bob@example.com',
  });
  assert.deepEqual(parseApproverEntry('bob@example.com')?.entry, 'user:bob@example.com');
  assert.deepEqual(parseApproverEntry('group:ABC'), { kind: 'group', id: 'abc', entry: 'group:abc' });
  for (const e of ['*', 'user:*', 'user:', 'group:', ' ']) assert.equal(parseApproverEntry(e), undefined, e);
  assert.equal(isStillApprover(policy(['*']), 'user:anyone@example.com'), false);
  assert.equal(isStillApprover(policy(['user:bob@example.com']), 'user:BOB@example.com'), true);
  assert.equal(isStillApprover(policy(['user:bob@example.com'], 1, 'auto'), 'user:bob@example.com'), false);
  assert.equal(isStillApprover(undefined, 'user:bob@example.com'), false);
  assert.equal(approvalsRequired(policy([], 0)), 1, 'at least one approval, whatever the policy says');
});

test('links go to user addresses and configured group mailboxes, never to the requester', () => {
  const p = policy([
    'user:alice@example.com',
    'user:bob@example.com',
    'group:ops',
    'group:sec',
    'user:svc-id',
  ]);
  const { recipients, unreachable } = approvalRecipients(p, 'Alice@example.com', { ops: 'ops@example.com' });
  assert.deepEqual(recipients, [
    { entry: 'user:bob@example.com', address: 'bob@example.com' },
    { entry: 'group:ops', address: 'ops@example.com' },
  ]);
  assert.deepEqual(unreachable, ['group:sec', 'user:svc-id']);
});

test('a policy that can never gather enough approvers other than the requester is recognised', () => {
  assert.equal(canEverBeApproved(policy(['user:alice@example.com'], 1), 'alice@example.com'), false);
  assert.equal(
    canEverBeApproved(policy(['user:alice@example.com', 'user:bob@example.com'], 2), 'alice@example.com'),
    false,
  );
  assert.equal(
    canEverBeApproved(policy(['user:alice@example.com', 'user:bob@example.com'], 1), 'alice@example.com'),
    true,
  );
  assert.equal(
    canEverBeApproved(policy(['user:alice@example.com', 'group:ops'], 3), 'alice@example.com'),
    true,
  );
});

test('who decides: the named user (and whoever is signed in must be them); a group member; never the requester', () => {
  assert.equal(resolveDecider('user:bob@example.com', undefined, 'alice@example.com').id, 'bob@example.com');
  assert.equal(
    resolveDecider('user:bob@example.com', person('BOB@example.com'), 'alice@example.com').id,
    'bob@example.com',
  );
  assert.throws(
    () => resolveDecider('user:bob@example.com', person('carol@example.com'), 'alice@example.com'),
    ApproverNotAllowed,
  );
  assert.throws(
    () => resolveDecider('user:alice@example.com', undefined, 'Alice@example.com'),
    SelfApprovalRefused,
  );
  assert.equal(
    resolveDecider('group:ops', person('erin@example.com', ['OPS']), 'alice@example.com').id,
    'erin@example.com',
  );
  assert.throws(() => resolveDecider('group:ops', undefined, 'alice@example.com'), ApproverNotAllowed);
  assert.throws(
    () => resolveDecider('group:ops', person('erin@example.com', ['dev']), 'alice@example.com'),
    ApproverNotAllowed,
  );
  assert.throws(
    () => resolveDecider('group:ops', person('alice@example.com', ['ops']), 'alice@example.com'),
    SelfApprovalRefused,
  );
  assert.throws(() => resolveDecider('*', undefined, 'alice@example.com'), ApproverNotAllowed);
});

test('approvals count once per person, only through entries the policy still names, never the requester', () => {
  const p = policy(['user:bob@example.com', 'user:carol@example.com', 'group:ops'], 2);
  const rows = [
    decision('bob@example.com', 'user:bob@example.com'),
    decision('bob@example.com', 'group:ops'),
    decision('dave@example.com', 'user:dave@example.com'),
    decision('alice@example.com', 'group:ops'),
    decision('carol@example.com', 'user:carol@example.com', 'deny'),
    decision('erin@example.com', 'group:ops'),
  ];
  assert.deepEqual(
    countingApprovals(rows, p, 'alice@example.com').map((d) => d.approver),
    ['bob@example.com', 'erin@example.com'],
  );
  const withoutOps = policy(['user:bob@example.com', 'user:carol@example.com'], 2);
  assert.deepEqual(
    countingApprovals(rows, withoutOps, 'alice@example.com').map((d) => d.approver),
    ['bob@example.com'],
  );
  assert.deepEqual(countingApprovals(rows, undefined, 'alice@example.com'), []);
});

test('a request that could never be approved is recognised, with the reason', () => {
  const ok = policy(['user:bob@example.com']);
  const bob = [{ entry: 'user:bob@example.com', address: 'bob@example.com' }];
  assert.equal(whyNeverApproved(ok, 'alice@example.com', bob, []), undefined);
  assert.match(
    whyNeverApproved(
      { ...ok, approval: { ...ok.approval, timeoutInSeconds: 0 } },
      'alice@example.com',
      bob,
      [],
    )!,
    /no time to decide/,
  );
  assert.match(whyNeverApproved(ok, 'bob@example.com', [], [])!, /fewer approvers other than the requester/);
  assert.match(
    whyNeverApproved(policy(['group:sec']), 'alice@example.com', [], ['group:sec'])!,
    /reached by mail \(group:sec\)/,
  );
});
