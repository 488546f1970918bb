/**
 * The reconciler, the safety net, against the in-memory ports: what it closes, removes, restores and reports when a
 * message was lost, a rule was left behind, someone changed an NSG by hand, or a baseline rule went missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ulid } from 'ulid';
import type { SecurityRuleView } from '../../../shared/domain/types';
import { evaluateRequest } from '../../../shared/usecases/evaluation';
import { applyPolicies } from '../../../shared/usecases/policies';
import { reconcile } from '../../../shared/usecases/reconcile';
import type { ReconcileOptions } from '../../../shared/usecases/reconcile';
import { RECONCILER_LEASE, runReconciler } from '../../../shared/usecases/reconcilerRun';
import {
  CALLER_ADDRESS,
  aPolicy,
  aPrincipal,
  aRequestBody,
  aSecurityRule,
  anAdmin,
  resourceGroupOf,
} from '../../support/builders';
import { memoryWorld } from '../../support/world';
import type { World } from '../../support/world';

const alice = aPrincipal('alice@example.com');
/** Unpaced: the sweeps' pace is for ARM's read bucket, which memory does not have. */
const FAST: ReconcileOptions = { sweepCallsPerSecond: 100_000 };
const GRACE = 120;

async function live() {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  assert.equal(w.request(r.id).status, 'active');
  return { w, vm, nsg: vm.nsgIds[0]!, id: r.id };
}

const someonesRule = (o: Partial<SecurityRuleView>) => aSecurityRule({ name: 'allow-anything', ...o });

function reconcilerEvents(w: World): string[] {
  return w.audit
    .events()
    .filter((e) => e.actor === 'system:reconciler')
    .map((e) => e.action);
}

test('a lost expiry message: past expiry and grace the reconciler closes the access', async () => {
  const { w, nsg, id } = await live();
  await w.deps.scheduledMessages.cancel('expire', w.request(id).expirySequenceNumber!);
  await w.advance(3600 + GRACE);
  assert.equal(w.request(id).status, 'active', 'nothing came at the expiry');
  assert.equal(w.network.jitRules(nsg).length, 1);
  await w.advance(1);
  const report = await reconcile(w.deps, FAST);
  assert.equal(report.closedExpired, 1);
  assert.equal(w.request(id).status, 'expired');
  assert.deepEqual(w.network.jitRules(nsg), []);
  assert.deepEqual(reconcilerEvents(w), ['grant.rule-removed', 'grant.expired']);
});

test('within the grace, the reconciler leaves an expiring grant to its message', async () => {
  const { w, nsg, id } = await live();
  await w.deps.scheduledMessages.cancel('expire', w.request(id).expirySequenceNumber!);
  w.clock.advance(3600 + GRACE - 1);
  await reconcile(w.deps, FAST);
  assert.equal(w.request(id).status, 'active');
  assert.equal(w.network.jitRules(nsg).length, 1);
});

test('an approved request whose grant message was lost is handed on again, with an audit event', async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const stalled = await w.submit(alice, aRequestBody(vm));
  await evaluateRequest(w.deps, w.queues.evaluations.shift()!);
  w.queues.grants.length = 0; // the grant message is lost
  assert.equal(w.request(stalled.id).status, 'approved');
  w.clock.advance(121);
  const report = await reconcile(w.deps, FAST);
  assert.equal(report.redriven, 1);
  assert.deepEqual(w.queues.grants, [stalled.id]);
  assert.deepEqual(w.audit.actions(stalled.id).slice(-1), ['reconcile.redriven']);
  await w.runQueues();
  assert.equal(w.request(stalled.id).status, 'active');
});

test('an orphan jit- rule no live grant owns is removed and audited; rules of others are never touched', async () => {
  const { w, nsg } = await live();
  const lost = ulid(w.clock.now().getTime() - 3600_000);
  w.network.nsg(nsg).rules.push(
    someonesRule({
      name: `jit-${lost.toLowerCase()}`,
      priority: 1500,
      sourceAddressPrefixes: ['198.51.100.9/32'],
      destinationAddressPrefixes: ['10.0.0.4'],
    }),
    someonesRule({ name: 'allow-bastion', priority: 200, sourceAddressPrefixes: ['10.1.0.0/24'] }),
  );
  const report = await reconcile(w.deps, FAST);
  assert.equal(report.orphansRemoved, 1);
  const names = w.network.rules(nsg).map((r) => r.name);
  assert.ok(!names.includes(`jit-${lost.toLowerCase()}`));
  assert.ok(names.includes('allow-bastion'));
  assert.equal(w.network.jitRules(nsg).length, 1, 'the live grant keeps its rule');
  const [event] = w.audit.events().filter((e) => e.action === 'reconcile.orphan-removed');
  assert.equal(event?.requestId, lost);
  assert.match(event?.detail ?? '', /no live grant owns it/);
});

/** The rules an alert event named (once each: a run that meets the lock again alerts again). */
function alerted(w: World, event: 'jit.grant.close-blocked' | 'jit.grant.neutralised'): unknown[][] {
  const seen = new Set(w.signals.named(event).map((a) => JSON.stringify([a.requestId, a.nsg, a.rule])));
  return [...seen].map((t) => JSON.parse(t) as unknown[]);
}

test('an orphan jit- rule a lock keeps: turned to Deny with an operator alert, or (ReadOnly) alerted as still open', async () => {
  const { w, nsg } = await live();
  const lost = ulid(w.clock.now().getTime() - 3600_000);
  const name = `jit-${lost.toLowerCase()}`;
  w.network
    .nsg(nsg)
    .rules.push(someonesRule({ name, priority: 1500, sourceAddressPrefixes: ['198.51.100.9/32'] }));
  w.network.lock(nsg, 'ReadOnly');
  await reconcile(w.deps, FAST);
  assert.equal(w.network.rules(nsg).find((r) => r.name === name)?.access, 'Allow');
  assert.deepEqual(alerted(w, 'jit.grant.close-blocked'), [[lost, nsg, name]]);
  assert.match(String(w.signals.named('jit.grant.close-blocked')[0]?.reason), /ReadOnly lock/);

  w.network.unlock(nsg);
  w.network.lock(nsg, 'CanNotDelete');
  await reconcile(w.deps, FAST);
  assert.equal(w.network.rules(nsg).find((r) => r.name === name)?.access, 'Deny');
  assert.deepEqual(alerted(w, 'jit.grant.neutralised'), [[lost, nsg, name]]);
});

test("drift: someone's rule opening a protected port to any source is reported once, and left in place", async () => {
  const { w, nsg } = await live();
  w.network.nsg(nsg).rules.push(someonesRule({ name: 'temp-ssh-from-anywhere' }));
  const first = await reconcile(w.deps, FAST);
  assert.equal(first.driftFound, 1);
  const drift = w.audit.events().filter((e) => e.action === 'drift.detected');
  assert.equal(drift.length, 1);
  assert.match(drift[0]?.detail ?? '', /temp-ssh-from-anywhere .* allows Tcp 22 from \*/);
  assert.deepEqual(drift[0]?.ports, [22]);
  assert.deepEqual(
    w.signals.named('jit.drift.found').map((a) => a.rule),
    ['temp-ssh-from-anywhere'],
  );
  assert.ok(
    w.network.rules(nsg).some((r) => r.name === 'temp-ssh-from-anywhere'),
    'never changed by JIT',
  );
  w.clock.advance(60);
  const second = await reconcile(w.deps, FAST);
  assert.equal(second.driftFound, 0);
  assert.equal(w.audit.events().filter((e) => e.action === 'drift.detected').length, 1);
});

test("a live grant's rule ARM shows Failed is written again", async () => {
  const { w, nsg, id } = await live();
  const rule = w.network.nsg(nsg).rules.find((r) => r.name.startsWith('jit-'))!;
  rule.provisioningState = 'Failed';
  const report = await reconcile(w.deps, FAST);
  assert.equal(report.rulesRewritten, 1);
  const [now] = w.network.jitRules(nsg);
  assert.equal(now?.provisioningState, 'Succeeded');
  assert.deepEqual(now?.sourceAddressPrefixes, [`${CALLER_ADDRESS}/32`]);
  const last = w.audit.events().at(-1);
  assert.deepEqual([last?.action, last?.requestId], ['grant.rule-applied', id]);
  assert.match(last?.detail ?? '', /written again/);
});

test('baseline: an enforcing policy puts a deny rule in front of its VMs; one deleted by hand is restored', async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  const nsg = vm.nsgIds[0]!;
  const scope = resourceGroupOf(vm);
  const text = `policies:\n  - { scope: ${scope}, ports: [{ port: 22, maxDuration: PT1H }], allowedSourcePrefixes: [my-ip], requesters: ['*'], enforce: true }`;
  await applyPolicies(w.deps, anAdmin(), { text, source: 'p.yaml' });
  const [deny] = w.network.jitRules(nsg);
  assert.deepEqual(
    [
      deny?.access,
      deny?.destinationPortRanges,
      deny?.destinationAddressPrefixes,
      deny?.sourceAddressPrefixes,
    ],
    ['Deny', ['22'], vm.privateAddresses, ['*']],
  );
  assert.ok(deny!.priority >= 2000 && deny!.priority <= 2999, 'in the baseline band, below every grant');
  assert.ok(w.audit.actions().includes('baseline.applied'));

  w.network.nsg(nsg).rules = w.network.nsg(nsg).rules.filter((r) => r.name !== deny!.name);
  const report = await reconcile(w.deps, FAST);
  assert.equal(report.baselinesRestored, 1);
  assert.deepEqual(
    w.network.jitRules(nsg).map((r) => [r.name, r.access]),
    [[deny!.name, 'Deny']],
  );
  assert.deepEqual(reconcilerEvents(w), ['baseline.restored']);

  // A grant opens above the baseline while it lasts.
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  assert.equal(w.request(r.id).status, 'active');
  const allow = w.network.jitRules(nsg).find((x) => x.access === 'Allow');
  assert.ok(allow && allow.priority < deny!.priority);
});

test('a new VM under an enforcing policy gets its baseline from the reconciler', async () => {
  const w = memoryWorld();
  const first = w.addVm();
  const scope = resourceGroupOf(first);
  const text = `policies:\n  - { scope: ${scope}, ports: [{ port: 3389, maxDuration: PT1H }], allowedSourcePrefixes: [my-ip], requesters: ['*'], enforce: true }`;
  await applyPolicies(w.deps, anAdmin(), { text, source: 'p.yaml' });
  const rg = scope.split('/resourcegroups/')[1]!;
  const second = w.addVm({ resourceGroup: rg });
  assert.deepEqual(w.network.jitRules(second.nsgIds[0]!), []);
  const report = await reconcile(w.deps, FAST);
  assert.ok(report.vmsRefreshed >= 1);
  assert.deepEqual(
    w.network.jitRules(second.nsgIds[0]!).map((r) => [r.access, r.destinationPortRanges]),
    [['Deny', ['3389']]],
  );
});

test('a second run while another instance holds the lease skips and changes nothing', async () => {
  const { w, nsg, id } = await live();
  await w.deps.scheduledMessages.cancel('expire', w.request(id).expirySequenceNumber!);
  w.clock.advance(3600 + GRACE + 1);
  w.leases.holders.set(RECONCILER_LEASE, 'instance-2');
  assert.equal(await runReconciler(w.deps, FAST), undefined);
  assert.equal(w.request(id).status, 'active');
  w.leases.holders.clear();
  assert.equal((await runReconciler(w.deps, FAST))?.closedExpired, 1);
  assert.deepEqual(w.network.jitRules(nsg), []);
});
