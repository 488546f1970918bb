import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessNotAllowed,
  ConcurrencyConflict,
  PolicyDocumentInvalid,
  PolicyNotFound,
  RoleRequired,
} from '../../../shared/domain/errors';
import { explainAccess, applyPolicies, deletePolicy, getPolicies } from '../../../shared/usecases/policies';
import { SUBSCRIPTION as SUB, aPrincipal, anAdmin } from '../../support/builders';
import { memoryWorld } from '../../support/world';

const admin = anAdmin('admin@contoso.com');
const alice = aPrincipal('alice@contoso.com');

/** A deployment in memory with one VM (and its NSG) in each of these resource groups. */
function setup(resourceGroups: string[] = []) {
  const w = memoryWorld();
  const vms = new Map(resourceGroups.map((rg) => [rg, w.addVm({ resourceGroup: rg })]));
  /** The ports the baseline deny rules in front of the VM in `rg` close, one entry per rule. */
  const denied = (rg: string) =>
    w.network
      .jitRules(vms.get(rg)!.nsgIds[0]!)
      .filter((r) => r.access === 'Deny')
      .map((r) => r.destinationPortRanges.join(','));
  return {
    w,
    deps: w.deps,
    policies: w.policies,
    /** The audit trail's events, oldest first. */
    events: () => w.audit.events(),
    denied,
    vms,
  };
}

const policy = (rg: string, extra = '', ports = '[{ port: 22, maxDuration: PT1H }]') =>
  `  - { scope: ${SUB}/resourceGroups/${rg}, ports: ${ports}, allowedSourcePrefixes: [my-ip], requesters: ['*']${extra} }`;
const doc = (...policies: string[]) => ({ text: ['policies:', ...policies].join('\n'), source: 'p.yaml' });
const scope = (rg: string) => `${SUB}/resourcegroups/${rg}`;

test('applying a document stores it, audits each change with before and after, and the same again does nothing', async () => {
  const { deps, policies, events } = setup();
  const first = await applyPolicies(deps, admin, doc(policy('a'), policy('b')), {
    clientAddress: '203.0.113.5',
  });
  assert.deepEqual(
    first.added.map((e) => e.scope),
    [scope('a'), scope('b')],
  );
  assert.deepEqual([...policies.rows.keys()].sort(), [scope('a'), scope('b')]);
  assert.deepEqual(
    events().map((e) => [e.actor, e.action, e.clientAddress]),
    [
      ['admin@contoso.com', 'policy.added', '203.0.113.5'],
      ['admin@contoso.com', 'policy.added', '203.0.113.5'],
    ],
  );
  assert.deepEqual(JSON.parse(events()[0]!.detail!), {
    scope: scope('a'),
    before: null,
    after: {
      scope: scope('a'),
      ports: [{ port: 22, protocol: 'Tcp', maxDuration: 'PT1H' }],
      allowedSourcePrefixes: ['my-ip'],
      requesters: ['*'],
      approval: { mode: 'auto' },
      justification: { required: false },
      enforce: false,
    },
  });

  const again = await applyPolicies(deps, admin, doc(policy('b'), policy('a')));
  assert.deepEqual([again.added, again.changed, again.removed, again.unchanged], [[], [], [], 2]);
  assert.equal(events().length, 2, 'no audit event for no change');
  assert.equal((await policies.getSet()).version, '1', 'nothing written');

  const third = await applyPolicies(deps, admin, doc(policy('a', '', '[{ port: 22, maxDuration: PT2H }]')));
  assert.deepEqual(
    third.changed.map((c) => [c.scope, c.fields.map((f) => f.field)]),
    [[scope('a'), ['ports']]],
  );
  assert.deepEqual(
    third.removed.map((e) => e.scope),
    [scope('b')],
  );
  assert.deepEqual(
    events()
      .slice(2)
      .map((e) => e.action),
    ['policy.changed', 'policy.removed'],
  );
  const changed = JSON.parse(events()[2]!.detail!);
  assert.deepEqual(changed.fields, ['ports']);
  assert.equal(changed.before.ports[0].maxDuration, 'PT1H');
  assert.equal(changed.after.ports[0].maxDuration, 'PT2H');
  assert.equal(JSON.parse(events()[3]!.detail!).after, null);
});

test('a dry run returns the diff and changes nothing', async () => {
  const { deps, policies, events, denied } = setup(['b']);
  await applyPolicies(deps, admin, doc(policy('a')));
  const dry = await applyPolicies(deps, admin, doc(policy('b', ', enforce: true')), { dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.deepEqual(
    [dry.added.map((e) => e.scope), dry.removed.map((e) => e.scope)],
    [[scope('b')], [scope('a')]],
  );
  assert.deepEqual([...policies.rows.keys()], [scope('a')]);
  assert.equal(events().length, 1);
  assert.deepEqual(denied('b'), [], 'no baseline deny put in place');
  const dryDelete = await deletePolicy(deps, admin, scope('a'), { dryRun: true });
  assert.deepEqual(
    dryDelete.removed.map((e) => e.scope),
    [scope('a')],
  );
  assert.deepEqual([...policies.rows.keys()], [scope('a')]);
});

test('only Jit.Admin may read or change policies', async () => {
  const { deps, policies, events } = setup();
  await assert.rejects(applyPolicies(deps, alice, doc(policy('a'))), RoleRequired);
  await assert.rejects(applyPolicies(deps, alice, doc(policy('a')), { dryRun: true }), RoleRequired);
  await assert.rejects(getPolicies(deps, alice), RoleRequired);
  await assert.rejects(deletePolicy(deps, alice, scope('a')), RoleRequired);
  assert.equal(policies.rows.size, 0);
  assert.equal(events().length, 0);
});

test('an invalid document applies nothing', async () => {
  const { deps, policies, events } = setup();
  await applyPolicies(deps, admin, doc(policy('a')));
  await assert.rejects(
    applyPolicies(deps, admin, doc(policy('b'), policy('c', ', enforce: maybe'))),
    PolicyDocumentInvalid,
  );
  assert.deepEqual([...policies.rows.keys()], [scope('a')]);
  assert.equal(events().length, 1);
});

test('a set changed by someone else meanwhile is a conflict, not a blind overwrite', async () => {
  const { deps, policies } = setup();
  await applyPolicies(deps, admin, doc(policy('a')));
  const getSet = policies.getSet.bind(policies);
  policies.getSet = async () => {
    const read = await getSet();
    await policies.upsert({ ...read.policies[0]!, scope: scope('z') });
    return read;
  };
  await assert.rejects(applyPolicies(deps, admin, doc(policy('b'))), ConcurrencyConflict);
  assert.deepEqual([...policies.rows.keys()].sort(), [scope('a'), scope('z')]);
});

test('enforce: a baseline deny closes the ports in front of covered VMs while a policy enforces, and goes when it stops', async () => {
  const { deps, denied, events } = setup(['a', 'b', 'c', 'd']);
  const on = ', enforce: true';
  const ports2 = '[{ port: 22, maxDuration: PT1H }, { port: 3389, maxDuration: PT1H }]';
  await applyPolicies(deps, admin, doc(policy('a', on), policy('b'), policy('c', on)));
  assert.deepEqual([denied('a'), denied('b'), denied('c')], [['22'], [], ['22']]);

  await applyPolicies(
    deps,
    admin,
    doc(
      policy('a', ''), // turned off
      policy('b', on), // turned on
      policy('c', on, ports2), // ports changed
    ),
  );
  assert.deepEqual([denied('a'), denied('b'), denied('c')], [[], ['22'], ['22,3389']]);

  // Enforcing, but only the requesters changed: the baseline deny stays as it is.
  const baselineEvents = () => events().filter((e) => e.action.startsWith('baseline.')).length;
  const before = baselineEvents();
  await applyPolicies(
    deps,
    admin,
    doc(policy('a'), policy('b', on).replace("['*']", '[user:x@y]'), policy('c', on, ports2)),
  );
  assert.deepEqual([denied('b'), denied('c')], [['22'], ['22,3389']]);
  assert.equal(baselineEvents(), before, 'no baseline rule written or removed');

  await applyPolicies(deps, admin, doc(policy('a')));
  assert.deepEqual([denied('b'), denied('c')], [[], []]);

  await applyPolicies(deps, admin, doc(policy('a'), policy('d', on)));
  assert.deepEqual(denied('d'), ['22']);
  await deletePolicy(deps, admin, scope('d'));
  assert.deepEqual(denied('d'), []);
});

test('a baseline deny that cannot be written is reported as a warning; the set stays as applied', async () => {
  const { w, deps, policies, denied, vms } = setup(['a']);
  const nsg = vms.get('a')!.nsgIds[0]!;
  w.network.lock(nsg, 'ReadOnly');
  const result = await applyPolicies(deps, admin, doc(policy('a', ', enforce: true')));
  assert.equal(result.warnings.length, 1);
  assert.match(
    result.warnings[0]!,
    new RegExp(
      `^putting the baseline deny in place for ${scope('a')} failed: .*cannot perform write operation`,
    ),
  );
  assert.ok(policies.rows.has(scope('a')));
  assert.deepEqual(denied('a'), []);
  assert.deepEqual(w.log.at('error'), ['policy.enforcement-failed']);
});

test('deleting a policy removes it and audits it; an unknown scope is PolicyNotFound', async () => {
  const { deps, policies, events } = setup();
  await applyPolicies(deps, admin, doc(policy('a'), policy('b')));
  const result = await deletePolicy(deps, admin, `${SUB}/resourceGroups/A`);
  assert.deepEqual(
    result.removed.map((e) => e.scope),
    [scope('a')],
  );
  assert.deepEqual([...policies.rows.keys()], [scope('b')]);
  assert.equal(events().at(-1)?.action, 'policy.removed');
  await assert.rejects(deletePolicy(deps, admin, scope('a')), PolicyNotFound);
});

test('explain: a requester of the deciding policy or an admin may ask; anyone else gets the request refusal', async () => {
  const { deps } = setup();
  await applyPolicies(deps, admin, doc(policy('a').replace("['*']", '[user:alice@contoso.com]')));
  const vm = `${SUB}/resourceGroups/a/providers/Microsoft.Compute/virtualMachines/vm1`;
  const mine = await explainAccess(deps, alice, { vm, port: '22' });
  assert.equal(mine.decidedBy, scope('a'));
  assert.deepEqual(mine.port, { port: 22, protocol: 'Tcp', allowed: true, maxDuration: 'PT1H' });
  const bob = aPrincipal('bob@contoso.com');
  const refused = await explainAccess(deps, bob, { vm }).catch((e: unknown) => e);
  assert.ok(refused instanceof AccessNotAllowed && !refused.disclose);
  const uncovered = vm.replace('/a/', '/elsewhere/');
  const other = await explainAccess(deps, alice, { vm: uncovered }).catch((e: unknown) => e);
  assert.deepEqual(other, refused, 'the same refusal whether or not a policy covers the VM');
  assert.equal((await explainAccess(deps, admin, { vm: uncovered })).decidedBy, undefined);
  await assert.rejects(explainAccess(deps, admin, { vm, port: '70000' }), /port: must be a port number/);
  await assert.rejects(explainAccess(deps, admin, { vm: 'demo-vm' }), /vm: must be an ARM resource id/);
});
