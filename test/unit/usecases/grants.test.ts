/**
 * A request's way from submission to closed access, against the in-memory ports: what is stored, what the NSGs hold,
 * what the audit trail says, which messages are due and who got mail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessNotAllowed,
  CloseBlocked,
  FeatureUnavailable,
  GrantNotApplicable,
  InvalidRequest,
  TransientFailure,
} from '../../../shared/domain/errors';
import { getRequest } from '../../../shared/usecases/requests';
import {
  CALLER_ADDRESS,
  aPolicy,
  aPrincipal,
  aRequestBody,
  aSecurityRule,
  manualApproval,
  resourceGroupOf,
} from '../../support/builders';
import { memoryWorld } from '../../support/world';

const alice = aPrincipal('alice@example.com');

/** A world with one VM (one NSG) under an auto-approving policy for its resource group. */
async function setup(
  policy: Parameters<typeof aPolicy>[0] = {},
  vmOptions: Parameters<typeof memoryWorld>[0] = {},
) {
  const w = memoryWorld(vmOptions);
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm), ...policy }));
  return { w, vm, nsg: vm.nsgIds[0]! };
}

function nothingStored(w: ReturnType<typeof memoryWorld>) {
  assert.equal(w.requests.rows.size, 0, 'no request stored');
  assert.deepEqual(w.audit.actions(), [], 'nothing audited');
  assert.deepEqual(w.queues.evaluations, [], 'nothing queued');
}

test('a valid request is stored as submitted, audited with its caller and address, and queued for evaluation', async () => {
  const { w, vm } = await setup();
  const r = await w.submit(alice, aRequestBody(vm, { justification: 'deploy' }));
  const stored = w.request(r.id);
  assert.equal(stored.status, 'submitted');
  assert.equal(stored.sourcePrefix, `${CALLER_ADDRESS}/32`, 'my-ip: the caller address');
  assert.equal(stored.policyScope, resourceGroupOf(vm));
  assert.deepEqual(w.queues.evaluations, [r.id]);
  const [event] = w.audit.events();
  assert.deepEqual(
    [event?.action, event?.actor, event?.clientAddress, event?.justification],
    ['request.submitted', 'alice@example.com', CALLER_ADDRESS, 'deploy'],
  );
});

test('a request the policy does not allow, or over the system limit, stores nothing', async () => {
  const { w, vm } = await setup({ requesters: ['user:bob@example.com'] });
  await assert.rejects(w.submit(alice, aRequestBody(vm)), AccessNotAllowed);
  await assert.rejects(w.submit(alice, aRequestBody(vm, { duration: 'PT9H' })), InvalidRequest);
  await assert.rejects(w.submit(alice, aRequestBody(vm, { ports: [3389] })), AccessNotAllowed);
  nothingStored(w);
});

test('a missing VM is said to be missing only to a caller a policy allows', async () => {
  const { w, vm } = await setup({ requesters: ['user:bob@example.com'] });
  const gone = vm.vmId.replace(/vm-\d+$/, 'no-such-vm');
  await assert.rejects(w.submit(alice, aRequestBody(gone)), AccessNotAllowed);
  await assert.rejects(w.submit(aPrincipal('bob@example.com'), aRequestBody(gone)), /the VM was not found/);
  nothingStored(w);
});

test('a VM whose NSG is under a ReadOnly lock is refused at submission: JIT could not close what it opened', async () => {
  const { w, vm, nsg } = await setup();
  w.network.lock(nsg, 'ReadOnly');
  await assert.rejects(w.submit(alice, aRequestBody(vm)), (err: unknown) => {
    assert.ok(err instanceof GrantNotApplicable);
    assert.match(err.message, /ReadOnly lock/);
    return true;
  });
  nothingStored(w);
});

test('manual approval with approval links switched off is refused before anything is stored', async () => {
  const { w, vm } = await setup(
    { approval: manualApproval(['user:bob@example.com']) },
    { approvals: { unavailableFeature: 'mail' } },
  );
  await assert.rejects(w.submit(alice, aRequestBody(vm)), FeatureUnavailable);
  nothingStored(w);
});

test('ARM not answering about the VM is a 503 to retry, and nothing is stored', async () => {
  const { w, vm } = await setup();
  w.network.unreachable = true;
  await assert.rejects(w.submit(alice, aRequestBody(vm)), TransientFailure);
  nothingStored(w);
});

test('auto-approval opens exactly the asked hole in the NSG, schedules one expiry and tells the requester', async () => {
  const { w, vm, nsg } = await setup();
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  const active = w.request(r.id);
  assert.equal(active.status, 'active');
  assert.equal(active.expiresAt, new Date(w.clock.now().getTime() + 3600_000).toISOString());
  const [rule, ...others] = w.network.jitRules(nsg);
  assert.deepEqual(others, []);
  assert.deepEqual(
    [
      rule?.access,
      rule?.priority,
      rule?.sourceAddressPrefixes,
      rule?.destinationAddressPrefixes,
      rule?.destinationPortRanges,
    ],
    ['Allow', 1000, [`${CALLER_ADDRESS}/32`], vm.privateAddresses, ['22']],
  );
  const expiry = w.scheduled.pending('expire', r.id);
  assert.deepEqual(
    expiry.map((m) => [m.dueAt, m.sequenceNumber]),
    [[active.expiresAt, active.expirySequenceNumber]],
  );
  assert.deepEqual(w.audit.actions(r.id), [
    'request.submitted',
    'request.approved',
    'grant.rule-applied',
    'grant.expiry-scheduled',
    'grant.activated',
  ]);
  assert.deepEqual(
    w.mail.to('alice@example.com').map((m) => m.subject),
    [`Access is live: 22/TCP (SSH) on ${vm.vmName}`],
  );
  assert.ok(w.nsgs.watched.has(nsg), 'the NSG is on the reconciler watch list');
  // A second delivery of the same message changes nothing.
  await w.deps.queues.enqueueGrant(r.id);
  await w.runQueues();
  assert.equal(w.network.jitRules(nsg).length, 1);
  assert.equal(w.scheduled.pending('expire', r.id).length, 1);
});

test('a VM behind two NSGs gets the rule in each; a priority another rule holds is skipped', async () => {
  const w = memoryWorld();
  const vm = w.addVm({ nsgs: ['subnet-nsg', 'nic-nsg'] });
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const [subnet, nic] = vm.nsgIds as [string, string];
  w.network.nsg(nic).rules.push(
    aSecurityRule({
      name: 'allow-monitoring',
      priority: 1000,
      sourceAddressPrefixes: ['10.9.0.0/16'],
      destinationPortRanges: ['9100'],
    }),
  );
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  assert.equal(w.request(r.id).status, 'active');
  assert.deepEqual(
    [w.network.jitRules(subnet).map((x) => x.priority), w.network.jitRules(nic).map((x) => x.priority)],
    [[1000], [1001]],
  );
  assert.ok(
    w.network.rules(nic).some((x) => x.name === 'allow-monitoring'),
    "the operator's rule stays",
  );
});

test('a busy NSG is retried; one that stays busy fails the grant and leaves no rule', async () => {
  const { w, vm, nsg } = await setup();
  w.network.makeBusy(nsg, 2);
  const first = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  assert.equal(w.request(first.id).status, 'active');

  const other = memoryWorld();
  const vm2 = other.addVm();
  await other.addPolicy(aPolicy({ scope: resourceGroupOf(vm2) }));
  other.network.makeBusy(vm2.nsgIds[0]!, 3); // every attempt at the write (maxArmAttempts), not the clean-up
  const r = await other.submit(alice, aRequestBody(vm2));
  await other.runQueues();
  const failed = other.request(r.id);
  assert.equal(failed.status, 'failed');
  assert.match(failed.statusReason ?? '', /gave up writing rule .* after 3 attempts/);
  assert.deepEqual(other.network.jitRules(vm2.nsgIds[0]!), []);
  assert.deepEqual(other.scheduled.pending('expire'), [], 'no expiry for access never opened');
  assert.equal(other.grants.live.size, 0, 'nothing left for the reconciler');
  // Failed first, so a retry of the message cannot write the rule again; then what was begun is cleaned up.
  assert.deepEqual(other.audit.actions(r.id).slice(-2), ['grant.failed', 'grant.rule-removed']);
});

test('a rule shadowed by a higher-priority deny is written and shown as not effective', async () => {
  const { w, vm, nsg } = await setup();
  w.network
    .nsg(nsg)
    .rules.push(aSecurityRule({ name: 'deny-ssh', priority: 500, access: 'Deny', protocol: '*' }));
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  const view = await getRequest(w.deps, alice, r.id);
  assert.equal(view.status, 'active');
  assert.deepEqual(
    view.rules.map((x) => [x.effective, x.shadowedBy]),
    [[false, 'deny-ssh (deny, priority 500) for port 22']],
  );
});

test("Defender for Cloud's JIT deny rule: the grant's rule goes right above it and lets traffic in; Defender's rules stay", async () => {
  const { w, vm, nsg } = await setup();
  const defender = [
    aSecurityRule({
      name: 'SecurityCenter-JITRule_-1532384372_4A4B6C5D8E9F40A1B2C3D4E5F6A7B8C9',
      priority: 1000,
      access: 'Deny',
      protocol: '*',
      sourceAddressPrefixes: ['*'],
      destinationAddressPrefixes: vm.privateAddresses,
      destinationPortRanges: ['22', '3389'],
    }),
    aSecurityRule({
      name: 'SecurityCenter-JITRule-1984529921-0F1E2D3C4B5A69788796A5B4C3D2E1F0',
      priority: 100,
      sourceAddressPrefixes: ['198.51.100.77'],
      destinationAddressPrefixes: vm.privateAddresses,
      destinationPortRanges: ['22'],
    }),
  ];
  w.network.nsg(nsg).rules.push(...defender);
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  const view = await getRequest(w.deps, alice, r.id);
  assert.deepEqual(
    view.rules.map((x) => [x.priority, x.effective, x.shadowedBy]),
    [[900, true, undefined]],
    'in 900-999, above the deny rule at 1000',
  );
  assert.deepEqual(
    w.network.rules(nsg).filter((x) => x.name.startsWith('SecurityCenter-')),
    defender,
    "Defender's rules untouched",
  );
});

test('cutSessions turns on flushConnection before the rule is written', async () => {
  const { w, vm, nsg } = await setup({ cutSessions: true });
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  assert.equal(w.request(r.id).status, 'active');
  assert.equal(w.network.nsg(nsg).flushConnection, true);
});

test('a policy removed before evaluation denies the request', async () => {
  const { w, vm } = await setup();
  const r = await w.submit(alice, aRequestBody(vm));
  w.policies.rows.clear();
  await w.runQueues();
  const denied = w.request(r.id);
  assert.equal(denied.status, 'denied');
  assert.match(denied.statusReason ?? '', /policy was removed/);
});

test('the expiry closes the rule first, then marks the request expired, and tells the requester', async () => {
  const { w, vm, nsg } = await setup();
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  const { expiresAt } = w.request(r.id);
  // Closing begins JIT_CLOSE_LEAD (10 s here) before expiresAt, so the port is shut by the time the grant names.
  await w.advance(3589);
  assert.equal(w.request(r.id).status, 'active');
  assert.equal(w.network.jitRules(nsg).length, 1);
  await w.advance(1);
  const expired = w.request(r.id);
  assert.equal(expired.status, 'expired');
  assert.ok(Date.parse(expired.endedAt!) < Date.parse(expiresAt!), 'closed before its expiry');
  assert.deepEqual(w.network.jitRules(nsg), []);
  assert.deepEqual(
    w.grants.of(r.id).map((g) => g.state),
    ['removed'],
  );
  assert.equal(w.grants.live.size, 0);
  assert.deepEqual(w.audit.actions(r.id).slice(-2), ['grant.rule-removed', 'grant.expired']);
  assert.match(w.mail.to('alice@example.com').at(-1)?.subject ?? '', /ended|expired/i);
});

test('closing begins JIT_CLOSE_LEAD before expiry, never more than a tenth of the grant; PT0S begins at expiry', async () => {
  const closingOf = async (lead: number, duration: string) => {
    const { w, vm } = await setup({}, { settings: { closeLeadInSeconds: lead } });
    const r = await w.submit(alice, aRequestBody(vm, { duration }));
    await w.runQueues();
    const { expiresAt, expirySequenceNumber } = w.request(r.id);
    const [message, ...others] = w.scheduled.pending('expire', r.id);
    assert.deepEqual(others, []);
    assert.deepEqual(
      [message?.dueAt, message?.sequenceNumber],
      [expiresAt, expirySequenceNumber],
      'the message still names the expiry it is for',
    );
    assert.match(
      w.audit.events().find((e) => e.requestId === r.id && e.action === 'grant.expiry-scheduled')?.detail ??
        '',
      new RegExp(`closing begins at ${message!.enqueueAt}`),
      'the trail says when closing begins',
    );
    return (Date.parse(expiresAt!) - Date.parse(message!.enqueueAt)) / 1000;
  };
  assert.equal(await closingOf(10, 'PT1H'), 10);
  assert.equal(await closingOf(10, 'PT1M'), 6, 'a tenth of a one-minute grant');
  assert.equal(await closingOf(0, 'PT1H'), 0);
});

test('a CanNotDelete lock: the rule is turned to Deny, the grant counts as closed and stays on the live index', async () => {
  const { w, vm, nsg } = await setup();
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  w.network.lock(nsg, 'CanNotDelete');
  await w.advance(3600);
  assert.equal(w.request(r.id).status, 'expired');
  const [rule] = w.network.jitRules(nsg);
  assert.equal(rule?.access, 'Deny', 'the same rule, letting nothing in');
  assert.deepEqual(rule?.sourceAddressPrefixes, [`${CALLER_ADDRESS}/32`], 'never anything broader');
  assert.deepEqual(
    w.grants.of(r.id).map((g) => g.state),
    ['neutralised'],
  );
  assert.ok(w.grants.live.has(r.id), 'the delete is retried until the lock is lifted');
  assert.ok(w.audit.actions(r.id).includes('grant.rule-neutralised'));
});

test('an identity that may write the rule but not delete it (Azure RBAC, a denyDelete assignment): turned to Deny; with neither, still open and said so', async () => {
  const { w, vm, nsg } = await setup();
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  w.network.deny(nsg, 'Microsoft.Network/networkSecurityGroups/securityRules/delete');
  await w.advance(3600);
  assert.equal(w.request(r.id).status, 'expired');
  assert.deepEqual(
    w.network.jitRules(nsg).map((x) => [x.access, x.sourceAddressPrefixes]),
    [['Deny', [`${CALLER_ADDRESS}/32`]]],
    'the same rule, letting nothing in',
  );
  assert.deepEqual(
    w.grants.of(r.id).map((g) => g.state),
    ['neutralised'],
  );
  assert.ok(w.grants.live.has(r.id), 'the delete is retried');
  const [neutralised] = w.audit
    .events()
    .filter((e) => e.requestId === r.id && e.action === 'grant.rule-neutralised');
  assert.match(neutralised?.detail ?? '', /Azure RBAC .*securityRules\/delete/);

  const other = await setup();
  const r2 = await other.w.submit(alice, aRequestBody(other.vm));
  await other.w.runQueues();
  other.w.network.deny(other.nsg, 'Microsoft.Network/networkSecurityGroups/securityRules/delete');
  other.w.network.deny(other.nsg, 'Microsoft.Network/networkSecurityGroups/securityRules/write');
  await assert.rejects(other.w.advance(3600), CloseBlocked);
  const stuck = other.w.request(r2.id);
  assert.equal(stuck.status, 'active');
  assert.match(stuck.statusReason ?? '', /access could not be closed and is still open/);
  assert.equal(other.w.network.jitRules(other.nsg)[0]?.access, 'Allow');
});

test('a CanNotDelete lock at expiry: the operator is alerted that the rule was turned to Deny', async () => {
  const { w, vm, nsg } = await setup();
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  w.network.lock(nsg, 'CanNotDelete');
  await w.advance(3600);
  const rule = `jit-${r.id.toLowerCase()}`;
  const [alert, ...more] = w.signals.named('jit.grant.neutralised');
  assert.deepEqual(
    { ...alert, refusedBy: undefined },
    { requestId: r.id, vm: vm.vmId.toLowerCase(), nsg, rule, refusedBy: undefined },
  );
  assert.ok(String(alert?.refusedBy).toLowerCase().includes(nsg.toLowerCase()), 'names the locked scope');
  assert.equal(more.length, 0);
  assert.deepEqual(w.signals.named('jit.grant.close-blocked'), [], 'nothing is open');
});

test('a ReadOnly lock at expiry: the request says access is still open, and never that it expired', async () => {
  const { w, vm, nsg } = await setup();
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  w.network.lock(nsg, 'ReadOnly');
  await assert.rejects(w.advance(3600), CloseBlocked);
  const stuck = w.request(r.id);
  assert.equal(stuck.status, 'active');
  assert.match(stuck.statusReason ?? '', /access could not be closed and is still open/);
  assert.equal(w.network.jitRules(nsg)[0]?.access, 'Allow');
  assert.ok(w.audit.actions(r.id).includes('grant.close-blocked'));
  const [alert] = w.signals.named('jit.grant.close-blocked');
  assert.equal(alert?.requestId, r.id);
  assert.equal(alert?.vm, vm.vmId.toLowerCase());
  assert.equal(alert?.nsg, nsg);
  assert.equal(alert?.rule, `jit-${r.id.toLowerCase()}`);
  assert.match(String(alert?.reason), /ReadOnly lock .* refuses both its deletion and turning it to Deny/);
  assert.deepEqual(w.signals.named('jit.grant.neutralised'), [], 'nothing was turned to Deny');
});
