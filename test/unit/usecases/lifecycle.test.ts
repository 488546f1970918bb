/**
 * After a request is made: revoking it, extending it, starting one made ahead of time, listing one's own; against
 * the in-memory ports, on what the request, the NSG, the scheduled messages and the trail show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessAlreadyEnded,
  AccessNotAllowed,
  InvalidState,
  RequestNotFound,
} from '../../../shared/domain/errors';
import { extendRequest, listRequests, revokeRequest } from '../../../shared/usecases/lifecycle';
import { getRequest } from '../../../shared/usecases/requests';
import {
  aPolicy,
  aPrincipal,
  aRequestBody,
  anAdmin,
  anAuditor,
  manualApproval,
  resourceGroupOf,
} from '../../support/builders';
import { liveGrant, memoryWorld } from '../../support/world';

const alice = aPrincipal('alice@example.com');
const mallory = aPrincipal('mallory@example.com');

const live = (policy: Parameters<typeof aPolicy>[0] = {}) => liveGrant(alice, policy);

test('revoking live access removes its rule, marks it revoked and cancels its expiry message', async () => {
  const { w, nsg, id } = await live();
  const view = await revokeRequest(w.deps, alice, id);
  assert.equal(view.status, 'revoked');
  assert.equal(w.request(id).revokedBy, 'alice@example.com');
  assert.deepEqual(w.network.jitRules(nsg), []);
  assert.deepEqual(w.scheduled.pending('expire', id), []);
  assert.deepEqual(w.audit.actions(id).slice(-2), ['grant.rule-removed', 'grant.revoked']);
  assert.doesNotMatch(w.mail.to('alice@example.com').at(-1)?.subject ?? '', /revoked/, 'she did it herself');
  // Again: the same answer, nothing more written.
  const events = w.audit.actions().length;
  assert.equal((await revokeRequest(w.deps, alice, id)).status, 'revoked');
  assert.equal(w.audit.actions().length, events);
});

test('someone else cannot revoke (and cannot tell the request exists); an admin can', async () => {
  const { w, nsg, id } = await live();
  await assert.rejects(revokeRequest(w.deps, mallory, id), RequestNotFound);
  assert.equal(w.request(id).status, 'active');
  assert.equal(w.network.jitRules(nsg).length, 1);
  await revokeRequest(w.deps, anAdmin(), id);
  assert.equal(w.request(id).status, 'revoked');
  assert.equal(w.request(id).revokedBy, 'admin@example.com');
  // Told, since someone else ended it; revoking one's own access mails no one (the test above).
  assert.match(w.mail.to('alice@example.com').at(-1)?.subject ?? '', /^Access revoked/);
});

test('an ended request cannot be revoked', async () => {
  const { w, id } = await live();
  await w.advance(3600);
  assert.equal(w.request(id).status, 'expired');
  await assert.rejects(revokeRequest(w.deps, alice, id), AccessAlreadyEnded);
});

test('a request still waiting for approval is cancelled; its approvers can no longer open it', async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(
    aPolicy({ scope: resourceGroupOf(vm), approval: manualApproval(['user:bob@example.com']) }),
  );
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  await revokeRequest(w.deps, alice, r.id);
  const cancelled = w.request(r.id);
  assert.equal(cancelled.status, 'revoked');
  assert.match(cancelled.statusReason ?? '', /cancelled by alice@example.com while pending-approval/);
  assert.deepEqual(w.audit.actions(r.id).slice(-1), ['request.cancelled']);
});

test('extending moves the expiry later: one expiry message, at the new time; the old time passes harmlessly', async () => {
  const { w, nsg, id } = await live();
  const before = w.request(id);
  await w.advance(600);
  const view = await extendRequest(w.deps, alice, id, { duration: 'PT30M' });
  const newExpiry = new Date(Date.parse(before.expiresAt!) + 1800_000).toISOString();
  assert.equal(view.expiresAt, newExpiry);
  assert.equal(w.request(id).durationInSeconds, 3600 + 1800);
  assert.deepEqual(
    w.scheduled.pending('expire', id).map((m) => [m.dueAt, m.sequenceNumber]),
    [[newExpiry, w.request(id).expirySequenceNumber]],
  );
  assert.deepEqual(
    w.grants.of(id).map((g) => g.expiresAt),
    [newExpiry],
  );
  assert.deepEqual(w.audit.actions(id).slice(-1), ['grant.extended']);
  await w.advance(3000); // past the old expiry
  assert.equal(w.request(id).status, 'active');
  assert.equal(w.network.jitRules(nsg).length, 1);
  await w.advance(1800);
  assert.equal(w.request(id).status, 'expired');
  assert.deepEqual(w.network.jitRules(nsg), []);
});

test('an extension moves when closing begins with the expiry; once closing has begun, it is refused and changes nothing', async () => {
  const { w, nsg, id } = await live();
  const view = await extendRequest(w.deps, alice, id, { duration: 'PT30M' });
  const [message] = w.scheduled.pending('expire', id);
  assert.equal(
    Date.parse(view.expiresAt!) - Date.parse(message!.enqueueAt),
    10_000,
    'closing begins JIT_CLOSE_LEAD before the new expiry',
  );
  await w.advance(3600 + 1800 - 11);
  await extendRequest(w.deps, alice, id, { duration: 'PT1M' }); // a second before closing begins: still extendable
  const before = w.request(id);
  // Closing has begun; its message is on its way (not delivered yet, as Service Bus may take a moment).
  w.clock.advance(61);
  await assert.rejects(
    extendRequest(w.deps, alice, id, { duration: 'PT1M' }),
    (err: Error) => err instanceof InvalidState && /is closing/.test(err.message),
  );
  assert.deepEqual(w.request(id), before, 'the request is as it was');
  assert.deepEqual(
    w.scheduled.pending('expire', id).map((m) => m.dueAt),
    [before.expiresAt],
  );
  await w.advance(0);
  assert.equal(w.request(id).status, 'expired');
  assert.deepEqual(w.network.jitRules(nsg), []);
});

test('an extension past the policy maximum, or by someone else, changes nothing', async () => {
  const { w, id } = await live();
  const before = w.request(id);
  await assert.rejects(extendRequest(w.deps, alice, id, { duration: 'PT4H' }), /at most|maximum|exceed/i);
  await assert.rejects(extendRequest(w.deps, mallory, id, { duration: 'PT10M' }), RequestNotFound);
  await assert.rejects(extendRequest(w.deps, anAdmin(), id, { duration: 'PT10M' }), AccessNotAllowed);
  assert.equal(w.request(id).expiresAt, before.expiresAt);
  assert.deepEqual(
    w.scheduled.pending('expire', id).map((m) => m.dueAt),
    [before.expiresAt],
  );
});

test('a request made ahead of time waits as scheduled, then opens at its start for its full duration', async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const startAt = new Date(w.clock.now().getTime() + 2 * 3600_000).toISOString();
  const r = await w.submit(alice, aRequestBody(vm, { startAt }));
  await w.runQueues();
  const scheduled = w.request(r.id);
  assert.equal(scheduled.status, 'scheduled');
  assert.deepEqual(
    w.scheduled.pending('start', r.id).map((m) => [m.dueAt, m.sequenceNumber]),
    [[startAt, scheduled.startSequenceNumber]],
  );
  assert.deepEqual(w.network.jitRules(vm.nsgIds[0]!), []);

  await w.advance(2 * 3600);
  const active = w.request(r.id);
  assert.equal(active.status, 'active');
  assert.equal(active.expiresAt, new Date(Date.parse(startAt) + 3600_000).toISOString());
  assert.equal(w.network.jitRules(vm.nsgIds[0]!).length, 1);
  assert.ok(w.audit.actions(r.id).includes('request.starting'));
});

test('cancelling a scheduled request cancels its start message', async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const startAt = new Date(w.clock.now().getTime() + 3600_000).toISOString();
  const r = await w.submit(alice, aRequestBody(vm, { startAt }));
  await w.runQueues();
  await revokeRequest(w.deps, alice, r.id);
  assert.equal(w.request(r.id).status, 'revoked');
  assert.deepEqual(w.scheduled.pending('start', r.id), []);
  await w.advance(3600);
  assert.equal(w.request(r.id).status, 'revoked');
  assert.deepEqual(w.network.jitRules(vm.nsgIds[0]!), []);
});

test("listing: one's own requests newest first; another requester's only for an admin or auditor", async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const first = await w.submit(alice, aRequestBody(vm));
  w.clock.advance(1); // newest first needs a newer one: two in the same millisecond have no order
  const second = await w.submit(alice, aRequestBody(vm, { ports: [22], duration: 'PT10M' }));
  await w.submit(mallory, aRequestBody(vm));
  const mine = await listRequests(w.deps, alice, {});
  assert.deepEqual(
    mine.items.map((r) => r.id),
    [second.id, first.id],
  );
  const page = await listRequests(w.deps, alice, { limit: '1' });
  assert.deepEqual(
    page.items.map((r) => r.id),
    [second.id],
  );
  const rest = await listRequests(w.deps, alice, { limit: '1', continuationToken: page.continuationToken! });
  assert.deepEqual(
    rest.items.map((r) => r.id),
    [first.id],
  );
  await assert.rejects(listRequests(w.deps, mallory, { requester: 'alice@example.com' }), AccessNotAllowed);
  const asAdmin = await listRequests(w.deps, anAdmin(), { requester: 'alice@example.com' });
  assert.equal(asAdmin.items.length, 2);
});

test('a request is shown to its requester, an admin and an auditor; anyone else gets the 404 of a missing one', async () => {
  const { w, id } = await live();
  assert.equal((await getRequest(w.deps, alice, id)).rules.length, 1);
  assert.equal((await getRequest(w.deps, anAdmin(), id)).id, id);
  assert.equal((await getRequest(w.deps, anAuditor(), id)).id, id);
  const refused = await getRequest(w.deps, mallory, id).catch((e: unknown) => e);
  const missing = await getRequest(w.deps, mallory, '01JQ0000000000000000000000').catch((e: unknown) => e);
  assert.ok(refused instanceof RequestNotFound && missing instanceof RequestNotFound);
  assert.equal(refused.message.replace(id, '?'), missing.message.replace('01JQ0000000000000000000000', '?'));
});
