/**
 * Two use cases on one request at the same moment, against the in-memory ports: one of them is held at the worst
 * step (`holdNextCall`) while the other runs, so each interleaving happens every time. What is checked is what a
 * person would see afterwards: the request, the rules in the NSG, the audit trail, the messages still due, the
 * mail. (Races through the real Service Bus and ARM emulators are in test/integration/scheduling.test.ts and
 * lifecycle.test.ts; these are the interleavings they do not pin down.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessAlreadyEnded } from '../../../shared/domain/errors';
import type { ExpiryMessage } from '../../../shared/domain/scheduledMessages';
import type { Principal } from '../../../shared/domain/types';
import { decideApproval, viewApproval } from '../../../shared/usecases/approvals';
import { expireGrant } from '../../../shared/usecases/expiry';
import { extendRequest, revokeRequest } from '../../../shared/usecases/lifecycle';
import { reconcile } from '../../../shared/usecases/reconcile';
import { aPolicy, aPrincipal, aRequestBody, manualApproval, resourceGroupOf } from '../../support/builders';
import { holdNextCall } from '../../support/memory';
import { liveGrant, memoryWorld, oneVmWorld } from '../../support/world';
import type { World } from '../../support/world';

const alice = aPrincipal('alice@example.com');
const bob = aPrincipal('bob@example.com');
const carol = aPrincipal('carol@example.com');

/** Alice's access to port 22 for an hour, live. */
async function live() {
  const { w, nsg, id } = await liveGrant(alice);
  assert.equal(w.request(id).status, 'active');
  return { w, nsg, id };
}

/** Holds the next write that moves the request to `status` (the conditional write carrying its audit event). */
function holdMoveTo(w: World, id: string, status: string) {
  return holdNextCall(
    w.requests,
    'update',
    (r, _etag, pendingAudit) => r.id === id && r.status === status && pendingAudit !== undefined,
  );
}

/** The expiry message of the request as Service Bus hands it over once closing has begun. */
function takeExpiry(w: World, id: string): ExpiryMessage {
  const message = w.scheduled
    .takeDue(w.clock.now())
    .find((m) => m.purpose === 'expire' && m.requestId === id);
  assert.ok(message, 'the expiry message is due');
  return message.body as ExpiryMessage;
}

/** How many times the trail says the access ended (expired, revoked or cancelled). */
function ends(w: World, id: string): string[] {
  return w.audit
    .actions(id)
    .filter((a) => a === 'grant.expired' || a === 'grant.revoked' || a === 'request.cancelled');
}

const endedMails = (w: World) =>
  w.mail.to('alice@example.com').filter((m) => /^Access ended/.test(m.subject));

test('a revoke while applyGrant is about to write its rule: the rule it then writes is removed, and the request stays revoked', async () => {
  const { w, vm, nsg } = await oneVmWorld();
  const { id } = await w.submit(alice, aRequestBody(vm));
  // applyGrant has checked the request is approved and is about to record where its rule goes: the revoke's
  // clean-up finds no rule row yet, so only applyGrant can remove what it writes next.
  const recording = holdNextCall(w.grants, 'upsert', (g) => g.requestId === id && g.state === 'applying');
  const applying = w.runQueues();
  await recording.reached;
  const revoked = await revokeRequest(w.deps, alice, id);
  assert.equal(revoked.status, 'revoked');
  recording.release();
  await applying;

  const r = w.request(id);
  assert.equal(r.status, 'revoked');
  assert.match(r.statusReason ?? '', /cancelled by alice@example\.com before access went live/);
  assert.deepEqual(w.network.jitRules(nsg), [], 'no rule left open');
  assert.deepEqual(
    w.grants.of(id).map((g) => g.state),
    ['removed'],
  );
  assert.equal(w.grants.live.has(id), false, 'nothing left for the reconciler');
  assert.deepEqual(
    w.scheduled.pending('expire', id),
    [],
    'no expiry message for access that never went live',
  );
  const actions = w.audit.actions(id);
  assert.ok(!actions.includes('grant.activated'), 'never said to be live');
  assert.deepEqual(
    actions.filter((a) => ['request.cancelled', 'grant.rule-applied', 'grant.rule-removed'].includes(a)),
    ['request.cancelled', 'grant.rule-applied', 'grant.rule-removed'],
    'the trail says it was cancelled, and that the rule written after was removed',
  );
  assert.ok(!w.mail.to('alice@example.com').some((m) => /^Access is live/.test(m.subject)));
});

test('a revoke while applyGrant schedules the expiry: the grant never goes live and its expiry message is cancelled', async () => {
  const { w, vm, nsg } = await oneVmWorld();
  const { id } = await w.submit(alice, aRequestBody(vm));
  // The rules are written; applyGrant is scheduling the expiry before it marks the request active.
  const scheduling = holdNextCall(
    w.scheduled,
    'schedule',
    (purpose, requestId) => purpose === 'expire' && requestId === id,
  );
  const applying = w.runQueues();
  await scheduling.reached;
  assert.equal(w.network.jitRules(nsg).length, 1, 'the rule is in place');
  await revokeRequest(w.deps, alice, id);
  scheduling.release();
  await applying;

  assert.equal(w.request(id).status, 'revoked');
  assert.deepEqual(w.network.jitRules(nsg), []);
  assert.deepEqual(w.scheduled.pending('expire', id), [], 'the message applyGrant scheduled is cancelled');
  const actions = w.audit.actions(id);
  assert.ok(!actions.includes('grant.activated'));
  assert.deepEqual(actions.slice(-1), ['grant.expiry-cancelled']);
});

test('two approvals at the same moment for a one-approval policy: one approval of the request, one grant', async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(
    aPolicy({
      scope: resourceGroupOf(vm),
      approval: manualApproval(['user:bob@example.com', 'user:carol@example.com'], 1),
    }),
  );
  const { id } = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  const form = async (who: Principal) => {
    const token = w.tokensMailedTo(who.name)[0]!;
    const page = await viewApproval(w.deps, token, who);
    return { token, formToken: page.form!.formToken, decision: 'approve', signedIn: who };
  };
  const [bobsForm, carolsForm] = [await form(bob), await form(carol)];
  // Bob's decision has read the request as pending and is about to write `approved` when Carol's arrives.
  const approving = holdMoveTo(w, id, 'approved');
  const bobs = decideApproval(w.deps, bobsForm);
  await approving.reached;
  const carols = await decideApproval(w.deps, carolsForm);
  approving.release();
  const bobsOutcome = await bobs;

  assert.deepEqual(
    [bobsOutcome.request.status, carols.request.status],
    ['approved', 'approved'],
    'each approver is told it is approved',
  );
  assert.equal(w.decisions.rows.length, 2, 'both decisions are on record');
  assert.deepEqual(
    w.audit.actions(id).filter((a) => a === 'request.approved'),
    ['request.approved'],
  );
  assert.deepEqual(w.queues.grants, [id], 'one jit-grants message');
  assert.equal(w.mail.to('alice@example.com').filter((m) => /^Approved/.test(m.subject)).length, 1);
  await w.runQueues();
  assert.equal(w.request(id).status, 'active');
  assert.equal(w.network.jitRules(vm.nsgIds[0]!).length, 1);
  assert.deepEqual(
    w.audit.actions(id).filter((a) => a === 'grant.activated'),
    ['grant.activated'],
  );
});

for (const winner of ['revoke', 'expiry'] as const) {
  test(`a revoke racing the expiry, the ${winner} writing first: one end recorded, no rule, the loser changes nothing`, async () => {
    const { w, nsg, id } = await live();
    w.clock.advance(3600 - 10); // closing begins: the expiry message comes
    const message = takeExpiry(w, id);
    let revoking: Promise<unknown>;
    if (winner === 'revoke') {
      // The expiry has removed the rule and is about to mark the request expired when the revoke comes.
      const marking = holdMoveTo(w, id, 'expired');
      const expiring = expireGrant(w.deps, message);
      await marking.reached;
      revoking = revokeRequest(w.deps, alice, id);
      await revoking;
      marking.release();
      await expiring;
    } else {
      // The revoke has removed the rule and is about to mark the request revoked when the expiry comes.
      const marking = holdMoveTo(w, id, 'revoked');
      revoking = revokeRequest(w.deps, alice, id).catch((err: unknown) => err);
      await marking.reached;
      await expireGrant(w.deps, message);
      marking.release();
      const answer = await revoking;
      assert.ok(answer instanceof AccessAlreadyEnded, 'the revoker is told the access had already ended');
    }

    const r = w.request(id);
    assert.equal(r.status, winner === 'revoke' ? 'revoked' : 'expired');
    assert.deepEqual(ends(w, id), [winner === 'revoke' ? 'grant.revoked' : 'grant.expired']);
    assert.deepEqual(w.network.jitRules(nsg), []);
    assert.equal(w.grants.live.has(id), false);
    assert.deepEqual(w.scheduled.pending('expire', id), []);
    assert.equal(
      endedMails(w).length,
      winner === 'revoke' ? 0 : 1,
      'the requester hears of the expiry only if it is what ended the access',
    );
  });
}

for (const winner of ['reconciler', 'message'] as const) {
  test(`the reconciler closing a lost expiry as the late message arrives, the ${winner} writing first: expired once, one mail`, async () => {
    const { w, nsg, id } = await live();
    // The expiry message was held up in Service Bus past the grace; the reconciler takes the close on.
    w.clock.advance(3600 + w.deps.settings.expiryGraceInSeconds + 1);
    const message = takeExpiry(w, id);
    const marking = holdMoveTo(w, id, 'expired');
    const [first, second] =
      winner === 'reconciler'
        ? [() => expireGrant(w.deps, message), () => reconcile(w.deps, { sweepCallsPerSecond: 100_000 })]
        : [() => reconcile(w.deps, { sweepCallsPerSecond: 100_000 }), () => expireGrant(w.deps, message)];
    const held = first();
    await marking.reached;
    await second();
    marking.release();
    await held;

    assert.equal(w.request(id).status, 'expired');
    const expired = w.audit.events().filter((e) => e.requestId === id && e.action === 'grant.expired');
    assert.deepEqual(
      expired.map((e) => e.actor),
      [winner === 'reconciler' ? 'system:reconciler' : 'system:expiry'],
    );
    assert.deepEqual(w.network.jitRules(nsg), []);
    assert.equal(w.grants.live.has(id), false);
    assert.equal(w.requests.open.has(id), false, 'off the open index');
    assert.equal(endedMails(w).length, 1);
  });
}

/**
 * An extension asked for a second before closing begins (so it passes `assertNotClosing`) that is still being
 * recorded when the expiry's message comes: the expiry is held at `step` while the extension finishes.
 */
async function extendAsClosingBegins(step: 'deleting the rule' | 'marking the request expired') {
  const { w, nsg, id } = await live();
  w.clock.advance(3600 - 11);
  const scheduling = holdNextCall(w.scheduled, 'schedule');
  const extending = extendRequest(w.deps, alice, id, { duration: 'PT30M' }).catch((err: unknown) => err);
  await scheduling.reached;
  w.clock.advance(1); // closing begins: the old expiry's message comes
  const message = takeExpiry(w, id);
  const held =
    step === 'deleting the rule' ? holdNextCall(w.network, 'deleteRule') : holdMoveTo(w, id, 'expired');
  const expiring = expireGrant(w.deps, message);
  await held.reached;
  scheduling.release();
  const answer = await extending;
  held.release();
  await expiring;
  return { w, nsg, id, answer };
}

test('an extension recorded while the expiry is deleting the rule: the request never says active over a closed port', async () => {
  const { w, nsg, id, answer } = await extendAsClosingBegins('deleting the rule');
  const r = w.request(id);
  const open = w.network.jitRules(nsg).length > 0;
  assert.ok(
    (r.status === 'active') === open,
    `the request is ${r.status} until ${r.expiresAt} (the extension answered ${answer instanceof Error ? answer.name : 'with success'}), and the port is ${open ? 'open' : 'closed'}`,
  );
  assert.equal(w.grants.live.has(id), r.status === 'active', 'on the live index exactly while it is active');
});

test('an extension recorded after the expiry removed the rule: access ends, on record and in a mail to the requester', async () => {
  const { w, nsg, id, answer } = await extendAsClosingBegins('marking the request expired');
  assert.ok(answer instanceof AccessAlreadyEnded, 'the extension is refused: access has ended');
  assert.equal(w.request(id).status, 'expired');
  assert.deepEqual(w.network.jitRules(nsg), []);
  assert.deepEqual(ends(w, id), ['grant.expired']);
  assert.deepEqual(w.scheduled.pending('expire', id), [], "no message left for the extension's expiry");
  assert.equal(endedMails(w).length, 1, 'the requester is told access ended, as for any expiry');
});
