import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessAlreadyEnded,
  AccessNotAllowed,
  InvalidRequest,
  InvalidState,
} from '../../../shared/domain/errors';
import {
  assertExtendable,
  checkExtension,
  checkStartAt,
  startsLater,
} from '../../../shared/domain/lifecycle';
import { mayRead, mayRevoke } from '../../../shared/domain/permissions';
import { parseExtendBody, parseListQuery } from '../../../shared/domain/lifecycleInput';
import { parseRequestBody } from '../../../shared/domain/requestInput';
import { canTransition } from '../../../shared/domain/state';
import type { AccessRequest, Policy, Principal } from '../../../shared/domain/types';
import { person } from '../../support/principals';

const VM =
  '/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/db1';
const alice: Principal = person('alice@contoso.com', ['g-ops'], []);
const now = new Date('2026-06-01T12:00:00Z');

const policy = (o: Partial<Policy> = {}): Policy => ({
  scope: '/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/rg',
  ports: [
    { port: 22, protocol: 'Tcp', maxDurationInSeconds: 3 * 3600 },
    { port: 3389, protocol: 'Tcp', maxDurationInSeconds: 3600 },
  ],
  allowedSourcePrefixes: ['my-ip'],
  requesters: ['*'],
  approval: { mode: 'auto', approvers: ['group:g-approvers'], required: 1, timeoutInSeconds: 600 },
  justification: { required: false },
  enforce: false,
  ...o,
});

const request = (o: Partial<AccessRequest> = {}): AccessRequest => ({
  id: '01J0000000000000000000000A',
  requester: 'alice@contoso.com',
  vmId: VM,
  ports: [22],
  protocol: 'Tcp',
  sourcePrefix: '203.0.113.7/32',
  durationInSeconds: 3600,
  status: 'active',
  policyScope: '/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/rg',
  approvalMode: 'auto',
  createdAt: now.toISOString(),
  updatedAt: now.toISOString(),
  expiresAt: new Date(now.getTime() + 3600_000).toISOString(),
  ...o,
});

test('a start time must lie in the future and at most 30 days ahead; it is kept in UTC', () => {
  assert.equal(checkStartAt(undefined, now), undefined);
  assert.equal(checkStartAt('2026-06-01T14:30:00+02:00', now), '2026-06-01T12:30:00.000Z');
  assert.throws(() => checkStartAt('2026-06-01T11:59:59Z', now), InvalidRequest);
  assert.throws(() => checkStartAt('2026-06-01T12:00:00Z', now), /must be in the future/);
  assert.equal(checkStartAt('2026-07-01T12:00:00Z', now), '2026-07-01T12:00:00.000Z');
  assert.throws(() => checkStartAt('2026-07-01T12:00:01Z', now), /at most 30d ahead/);
  assert.equal(startsLater({ startAt: '2026-06-01T12:00:01Z' }, now), true);
  assert.equal(startsLater({ startAt: '2026-06-01T12:00:00Z' }, now), false);
  assert.equal(startsLater({}, now), false);
});

test('a request body may carry a start time, an RFC 3339 date-time with a zone', () => {
  const body = { vm: VM, ports: [22], duration: 'PT1H' };
  assert.equal(
    parseRequestBody({ ...body, startAt: '2026-12-01T22:00:00Z' }).startAt,
    '2026-12-01T22:00:00Z',
  );
  assert.equal('startAt' in parseRequestBody(body), false);
  for (const startAt of ['2026-12-01 22:00', '2026-12-01T22:00:00', 'tomorrow', 1764626400]) {
    assert.throws(
      () => parseRequestBody({ ...body, startAt }),
      (e: unknown) => e instanceof InvalidRequest && e.problems[0]?.field === 'startAt',
      String(startAt),
    );
  }
});

test('the states a scheduled request passes through, and what may be revoked', () => {
  for (const [from, to] of [
    ['submitted', 'scheduled'],
    ['scheduled', 'approved'],
    ['approved', 'active'],
    ['pending-approval', 'scheduled'],
  ] as const)
    assert.ok(canTransition(from, to), `${from} -> ${to}`);
  for (const from of ['submitted', 'pending-approval', 'scheduled', 'approved', 'active'] as const)
    assert.ok(canTransition(from, 'revoked'), `${from} can be revoked`);
  for (const from of ['expired', 'denied', 'failed', 'approval-expired', 'revoked'] as const)
    assert.ok(!canTransition(from, 'revoked'), `${from} is final`);
  assert.ok(
    !canTransition('scheduled', 'active'),
    'a scheduled request is approved again before it goes live',
  );
});

test('the requester, an approver of the policy or an admin may revoke; an auditor may only read', () => {
  const r = request();
  const bob: Principal = person('bob@contoso.com', ['g-approvers'], []);
  const carol: Principal = person('carol@contoso.com', [], ['Jit.Auditor']);
  const dave: Principal = person('dave@contoso.com', [], ['Jit.Admin']);
  const eve: Principal = person('eve@contoso.com', [], []);
  assert.ok(mayRevoke({ ...alice, id: 'ALICE@contoso.com' }, r, policy()));
  assert.ok(mayRevoke(bob, r, policy()));
  assert.ok(!mayRevoke(bob, r, undefined), 'approver of a policy that no longer exists');
  assert.ok(mayRevoke(dave, r, policy()));
  assert.ok(!mayRevoke(carol, r, policy()) && mayRead(carol, r));
  assert.ok(!mayRevoke(eve, r, policy()) && !mayRead(eve, r));
});

test('only live access is extended; the refusal says what to do instead', () => {
  assert.doesNotThrow(() => assertExtendable(request()));
  assert.throws(
    () => assertExtendable(request({ status: 'expired', endedAt: '2026-06-01T13:00:00.000Z' })),
    (e: unknown) =>
      e instanceof AccessAlreadyEnded &&
      e.requestStatus === 'expired' &&
      /expired at 2026-06-01T13:00:00.000Z.*submit a new request/.test(e.message),
  );
  assert.throws(
    () => assertExtendable(request({ status: 'scheduled', startAt: '2026-06-02T00:00:00.000Z' })),
    (e: unknown) =>
      e instanceof InvalidState && /starts at 2026-06-02T00:00:00.000Z: revoke it/.test(e.message),
  );
  assert.throws(() => assertExtendable(request({ status: 'approved' })), InvalidState);
});

test("an extension fits the whole access within the policy's and the system's maximum", () => {
  assert.equal(checkExtension(policy(), request(), alice, 3600, 86400), 7200);
  assert.equal(checkExtension(policy(), request(), alice, 7200, 86400), 3 * 3600);
  assert.throws(
    () => checkExtension(policy(), request(), alice, 7201, 86400),
    (e: unknown) =>
      e instanceof AccessNotAllowed &&
      e.disclose &&
      /3h1s in all, over the policy's maximum for port 22 of 3h; it can be extended by at most 2h$/.test(
        e.message,
      ),
  );
  // The strictest port decides.
  assert.throws(
    () => checkExtension(policy(), request({ ports: [22, 3389] }), alice, 60, 86400),
    /maximum for port 3389 of 1h; it cannot be extended further/,
  );
  assert.throws(
    () => checkExtension(policy(), request(), alice, 3600, 5400),
    /the system's maximum of 1h30m/,
  );
  assert.throws(() => checkExtension(undefined, request(), alice, 60, 86400), /no longer exists/);
  assert.throws(
    () =>
      checkExtension(
        policy({ approval: { ...policy().approval, mode: 'manual' } }),
        request(),
        alice,
        60,
        86400,
      ),
    /requires approval.*submit a new request/,
  );
  assert.throws(
    () =>
      checkExtension(
        policy({ ports: [{ port: 3389, protocol: 'Tcp', maxDurationInSeconds: 3600 }] }),
        request(),
        alice,
        60,
        86400,
      ),
    /port 22\/Tcp is no longer allowed/,
  );
  assert.throws(
    () => checkExtension(policy({ requesters: ['group:g-other'] }), request(), alice, 60, 86400),
    (e: unknown) => e instanceof AccessNotAllowed && !e.disclose,
  );
});

test('extension bodies and list queries are checked field by field', () => {
  assert.equal(parseExtendBody({ duration: 'PT30M' }), 1800);
  assert.throws(
    () => parseExtendBody({ duration: 'P1M' }),
    (e: unknown) => e instanceof InvalidRequest && e.problems[0]?.field === 'duration',
  );
  assert.throws(
    () => parseExtendBody({ duration: 'PT1M', until: 'x' }),
    (e: unknown) => e instanceof InvalidRequest && e.problems.some((p) => p.field === 'until'),
  );
  assert.deepEqual(parseListQuery({}), {
    status: undefined,
    vmId: undefined,
    requester: undefined,
    limit: 25,
    continuationToken: undefined,
  });
  assert.deepEqual(parseListQuery({ status: 'active', vm: VM, requester: 'Bob@Contoso.com', limit: '100' }), {
    status: 'active',
    vmId: VM,
    requester: 'bob@contoso.com',
    limit: 100,
    continuationToken: undefined,
  });
  for (const [query, field] of [
    [{ limit: '0' }, 'limit'],
    [{ limit: '101' }, 'limit'],
    [{ limit: '2.5' }, 'limit'],
    [{ limit: 'ten' }, 'limit'],
    [{ status: 'live' }, 'status'],
    [{ vm: 'rg/db1' }, 'vm'],
    [{ page: '2' }, 'page'],
  ] as const) {
    assert.throws(
      () => parseListQuery(query),
      (e: unknown) => e instanceof InvalidRequest && e.problems.some((p) => p.field === field),
      JSON.stringify(query),
    );
  }
});
