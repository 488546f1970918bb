/**
 * Approver groups (docs/approvals.md): a `group:<id>` approver is reached through the mailbox
 * JIT_APPROVER_GROUP_MAILBOXES names for it, its members are checked when they decide, each member counts as one
 * person towards `required`, and the requester never decides even as a member. Against the in-memory ports, on
 * what people see: the request, the decisions, the mail, the trail and the log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlreadyDecided, SelfApprovalRefused } from '../../../shared/domain/errors';
import type { Principal } from '../../../shared/domain/types';
import { decideApproval, viewApproval } from '../../../shared/usecases/approvals';
import { aPolicy, aPrincipal, aRequestBody, manualApproval, resourceGroupOf } from '../../support/builders';
import { memoryWorld } from '../../support/world';
import type { World } from '../../support/world';

const OPS = 'ops@example.com';
const alice = aPrincipal('alice@example.com');
const erin = aPrincipal('erin@example.com', { groups: ['ops-group'] });
const frank = aPrincipal('frank@example.com', { groups: ['ops-group'] });
const bob = aPrincipal('bob@example.com');

/** Alice's request under a manual policy, evaluated; `ops-group` has the mailbox ops@example.com. */
async function pending(
  approvers: string[],
  required = 1,
  groupMailboxes: Record<string, string> = { 'ops-group': OPS },
) {
  const w = memoryWorld({ approvals: { groupMailboxes } });
  const vm = w.addVm();
  const policy = await w.addPolicy(
    aPolicy({ scope: resourceGroupOf(vm), approval: manualApproval(approvers, required) }),
  );
  const { id } = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  return { w, vm, policy, id };
}

/** What a person does on opening the link mailed to `address`: the page's form, ready to post. */
async function formFor(w: World, address: string, who: Principal) {
  const token = w.tokensMailedTo(address)[0]!;
  const page = await viewApproval(w.deps, token, who);
  assert.ok(page.form, `the page offers ${who.name} a decision`);
  return { token, formToken: page.form.formToken, signedIn: who };
}

const approve = (w: World, form: Awaited<ReturnType<typeof formFor>>) =>
  decideApproval(w.deps, { ...form, decision: 'approve' });

test("a group approver is mailed one link at the group's mailbox; a group with no mailbox gets none, and the trail and log say so", async () => {
  const { w, id } = await pending(['group:ops-group', 'group:sec-group']);
  assert.equal(w.request(id).status, 'pending-approval');
  assert.equal(w.tokensMailedTo(OPS).length, 1);
  assert.match(w.mail.to(OPS)[0]!.text, /approver group ops-group: whoever uses it must sign in as a member/);
  assert.deepEqual(
    [...new Set(w.mail.sent.flatMap((m) => m.to))].sort(),
    ['alice@example.com', OPS],
    'no other mail goes out: group members are not looked up',
  );
  const requested = w.audit.events().find((e) => e.requestId === id && e.action === 'approval.requested');
  assert.match(
    requested?.detail ?? '',
    /links mailed to ops@example\.com \(group:ops-group\); no mailbox for group:sec-group/,
  );
  assert.ok(w.log.at('warn').includes('approval.unreachable-approvers'));
  assert.match(w.mail.to('alice@example.com').at(-1)?.text ?? '', /Asked: ops@example\.com\./);
});

test('a policy that mail cannot bring to `required` denies at once: people count once, a group without a mailbox not at all', async () => {
  const { w, id } = await pending(['user:bob@example.com', 'group:ops-group'], 2, {});
  const r = w.request(id);
  assert.equal(r.status, 'denied');
  assert.match(
    r.statusReason ?? '',
    /needs 2 approval\(s\) but only 1 approver\(s\) can be reached by mail \(no mailbox for group:ops-group\)/,
  );
  assert.deepEqual(w.scheduled.pending('approval-deadline', id), [], 'nothing waits for a decision');
  assert.deepEqual(w.tokensMailedTo('bob@example.com'), [], 'no link for a decision that could never count');
  // With the group's mailbox, the group may hold the second approver: it waits for them.
  const reachable = await pending(['user:bob@example.com', 'group:ops-group'], 2);
  assert.equal(reachable.w.request(reachable.id).status, 'pending-approval');
});

test('a policy whose only approver is a group with no mailbox denies the request at once, saying why', async () => {
  const { w, id } = await pending(['group:ops-group'], 1, {});
  const r = w.request(id);
  assert.equal(r.status, 'denied');
  assert.match(r.statusReason ?? '', /no approver can be reached by mail \(group:ops-group\)/);
  assert.deepEqual(w.scheduled.pending('approval-deadline', id), [], 'nothing waits for a decision');
  assert.deepEqual(
    w.mail.sent.map((m) => [m.to, m.subject.split(':')[0]]),
    [[['alice@example.com'], 'Denied']],
    'only the requester hears, and why',
  );
});

test('two members of one approver group are two people: with two required, both approvals open access', async () => {
  const { w, vm, id } = await pending(['group:ops-group'], 2);
  const first = await approve(w, await formFor(w, OPS, erin));
  assert.deepEqual([first.request.status, first.approvals, first.required], ['pending-approval', 1, 2]);
  const second = await approve(w, await formFor(w, OPS, frank));
  assert.deepEqual([second.request.status, second.approvals], ['approved', 2]);
  assert.deepEqual(
    w.decisions.rows.map((d) => [d.approver, d.via]),
    [
      ['erin@example.com', 'group:ops-group'],
      ['frank@example.com', 'group:ops-group'],
    ],
  );
  await w.runQueues();
  assert.equal(w.request(id).status, 'active');
  assert.equal(w.network.jitRules(vm.nsgIds[0]!).length, 1);
});

test('a member named both through a group and by name decides once: their second link is refused and counts nothing', async () => {
  const { w, id } = await pending(['group:ops-group', 'user:erin@example.com'], 2);
  // Both mails open side by side: each page offers a decision until one is made.
  const viaGroup = await formFor(w, OPS, erin);
  const byName = await formFor(w, 'erin@example.com', erin);
  await approve(w, viaGroup);
  await assert.rejects(approve(w, byName), AlreadyDecided);
  assert.equal(w.decisions.rows.length, 1);
  assert.equal(w.request(id).status, 'pending-approval');
  assert.deepEqual(w.queues.grants, []);
  assert.deepEqual(
    w.audit.actions(id).filter((a) => a.startsWith('approval.approved')),
    ['approval.approved'],
  );
});

test('the requester in the approver group cannot decide with the group link; another member can', async () => {
  const { w, id } = await pending(['group:ops-group'], 1);
  // The group's mailbox gets the link whoever is in the group (nobody looks members up)...
  const token = w.tokensMailedTo(OPS)[0]!;
  const aliceInOps = aPrincipal('alice@example.com', { groups: ['ops-group'] });
  // ...but neither the page nor a posted form lets the requester decide.
  await assert.rejects(viewApproval(w.deps, token, aliceInOps), SelfApprovalRefused);
  const claims = await w.tokens.verify(token);
  const formToken = await w.tokens.issueFormToken(claims.tokenId, aliceInOps.id);
  await assert.rejects(
    decideApproval(w.deps, { token, formToken, decision: 'approve', signedIn: aliceInOps }),
    SelfApprovalRefused,
  );
  assert.deepEqual(w.decisions.rows, []);
  assert.equal(w.request(id).status, 'pending-approval');
  assert.equal((await approve(w, await formFor(w, OPS, erin))).request.status, 'approved');
});

test('once settled, an approver whose link went unused is told no action is needed; a group whose member decided is not', async () => {
  const { w } = await pending(['group:ops-group', 'user:bob@example.com'], 1);
  await approve(w, await formFor(w, OPS, erin));
  assert.deepEqual(
    w.mail.to('bob@example.com').map((m) => /^(Approve access\?|No action needed)/.exec(m.subject)?.[1]),
    ['Approve access?', 'No action needed'],
  );
  assert.equal(w.mail.to(OPS).length, 1, "the group's mailbox only ever got its link");
});

test('an approval through a group the policy no longer names stops counting', async () => {
  const { w, policy, id } = await pending(['group:ops-group', 'user:bob@example.com'], 2);
  await approve(w, await formFor(w, OPS, erin));
  await w.addPolicy({
    ...policy,
    approval: { ...policy.approval, approvers: ['user:bob@example.com', 'user:carol@example.com'] },
  });
  const outcome = await approve(w, await formFor(w, 'bob@example.com', bob));
  assert.deepEqual([outcome.request.status, outcome.approvals, outcome.required], ['pending-approval', 1, 2]);
  assert.equal(w.request(id).status, 'pending-approval');
  assert.deepEqual(w.queues.grants, []);
});
