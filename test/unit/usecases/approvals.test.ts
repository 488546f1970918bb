/**
 * Manual approval against the in-memory ports: approvers are mailed links, decide on the page, and the request moves
 * on once enough of them approved, at the first denial, or at its deadline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApprovalClosed, ApproverNotAllowed, InvalidRequest } from '../../../shared/domain/errors';
import type { Principal } from '../../../shared/domain/types';
import { decideApproval, viewApproval } from '../../../shared/usecases/approvals';
import { getRequest } from '../../../shared/usecases/requests';
import { aPolicy, aPrincipal, aRequestBody, manualApproval, resourceGroupOf } from '../../support/builders';
import { memoryWorld } from '../../support/world';
import type { World } from '../../support/world';

const alice = aPrincipal('alice@example.com');
const bob = aPrincipal('bob@example.com');
const carol = aPrincipal('carol@example.com');

async function pending(approvers = ['user:bob@example.com'], required = 1) {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm), approval: manualApproval(approvers, required) }));
  const r = await w.submit(alice, aRequestBody(vm, { justification: 'incident 42' }));
  await w.runQueues();
  return { w, vm, id: r.id };
}

/** What an approver does: opens the mailed link signed in, and posts the page's form. */
async function decide(w: World, who: Principal, decision: 'approve' | 'deny', comment?: string) {
  const token = w.tokensMailedTo(who.name).at(-1)!;
  const page = await viewApproval(w.deps, token, who);
  assert.ok(page.form, 'the page offers a decision');
  return decideApproval(w.deps, { token, formToken: page.form.formToken, decision, comment, signedIn: who });
}

test('a manual request waits with a deadline message, and each approver and the requester are mailed', async () => {
  const { w, id } = await pending(['user:bob@example.com', 'user:carol@example.com']);
  const r = w.request(id);
  assert.equal(r.status, 'pending-approval');
  assert.deepEqual(
    w.scheduled.pending('approval-deadline', id).map((m) => [m.dueAt, m.sequenceNumber]),
    [[r.approvalDeadline, r.approvalDeadlineSequenceNumber]],
  );
  assert.equal(w.tokensMailedTo('bob@example.com').length, 1);
  assert.equal(w.tokensMailedTo('carol@example.com').length, 1);
  assert.match(
    w.mail.to('alice@example.com').at(-1)?.text ?? '',
    /Asked: bob@example\.com, carol@example\.com/,
  );
  assert.deepEqual(w.audit.actions(id), [
    'request.submitted',
    'request.pending-approval',
    'approval.requested',
  ]);
  assert.deepEqual(w.network.jitRules(w.network.nsgs.keys().next().value!), [], 'nothing opened yet');
});

test('viewing the link changes nothing; approving opens access', async () => {
  const { w, vm, id } = await pending();
  const token = w.tokensMailedTo('bob@example.com')[0]!;
  const page = await viewApproval(w.deps, token, bob);
  assert.deepEqual(
    page.opens?.map((o) => o.nsgId),
    vm.nsgIds,
  );
  assert.equal(w.request(id).status, 'pending-approval');
  assert.equal(w.decisions.rows.length, 0);

  const outcome = await decide(w, bob, 'approve', 'ok for the incident');
  assert.equal(outcome.request.status, 'approved');
  await w.runQueues();
  assert.equal(w.request(id).status, 'active');
  assert.equal(w.network.jitRules(vm.nsgIds[0]!).length, 1);
  assert.ok(w.audit.actions(id).includes('approval.approved'));
  const view = await getRequest(w.deps, alice, id);
  assert.deepEqual(
    view.approval?.decisions.map((d) => [d.approver, d.decision, d.comment]),
    [['bob@example.com', 'approve', 'ok for the incident']],
  );
});

test('two approvals required: the first leaves it pending, the second approves it', async () => {
  const { w, id } = await pending(['user:bob@example.com', 'user:carol@example.com'], 2);
  const first = await decide(w, bob, 'approve');
  assert.deepEqual([first.request.status, first.approvals, first.required], ['pending-approval', 1, 2]);
  assert.deepEqual(w.queues.grants, []);
  const second = await decide(w, carol, 'approve');
  assert.equal(second.request.status, 'approved');
  assert.deepEqual(w.queues.grants, [id]);
});

test('a denial needs a reason, ends the request, and the requester is told why', async () => {
  const { w, id } = await pending();
  await assert.rejects(decide(w, bob, 'deny'), InvalidRequest);
  assert.equal(w.decisions.rows.length, 0, 'nothing recorded');
  await decide(w, bob, 'deny', 'not during the freeze');
  const denied = w.request(id);
  assert.equal(denied.status, 'denied');
  assert.match(denied.statusReason ?? '', /not during the freeze/);
  assert.match(w.mail.to('alice@example.com').at(-1)?.text ?? '', /not during the freeze/);
  assert.deepEqual(w.queues.grants, []);
});

test('only the approver the link names may use it, never the requester', async () => {
  const { w, id } = await pending();
  const token = w.tokensMailedTo('bob@example.com')[0]!;
  await assert.rejects(viewApproval(w.deps, token, carol), ApproverNotAllowed);
  await assert.rejects(viewApproval(w.deps, token, alice), ApproverNotAllowed);
  // A policy naming the requester as an approver still does not let them approve their own request.
  const self = await pending(['user:alice@example.com', 'user:bob@example.com']);
  const own = self.w.tokensMailedTo('alice@example.com');
  assert.deepEqual(own, [], 'the requester is not asked');
  await assert.rejects(
    viewApproval(self.w.deps, self.w.tokensMailedTo('bob@example.com')[0]!, alice),
    ApproverNotAllowed,
  );
  assert.equal(w.request(id).status, 'pending-approval');
});

test('at the deadline a pending request becomes approval-expired and a late decision is refused', async () => {
  const { w, id } = await pending();
  const token = w.tokensMailedTo('bob@example.com')[0]!;
  await w.advance(3599);
  const page = await viewApproval(w.deps, token, bob);
  await w.advance(1);
  const expired = w.request(id);
  assert.equal(expired.status, 'approval-expired');
  assert.match(expired.statusReason ?? '', /no decision by/);
  await assert.rejects(
    decideApproval(w.deps, { token, formToken: page.form!.formToken, decision: 'approve', signedIn: bob }),
    ApprovalClosed,
  );
  assert.equal(w.decisions.rows.length, 0);
  assert.deepEqual(w.audit.actions(id).slice(-1), ['request.approval-expired']);
});
