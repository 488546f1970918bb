import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessNotAllowed,
  ConcurrencyConflict,
  PolicyDocumentInvalid,
  PolicyNotFound,
  RoleRequired,
} from '../../../shared/domain/errors';
import type {
  PolicyEnforcement,
  PolicyRepository,
  PolicySet,
  PolicyWrite,
} from '../../../shared/domain/ports';
import type { AuditEvent, Policy, Principal } from '../../../shared/domain/types';
import type { Deps } from '../../../shared/usecases/deps';
import { applyPolicies, deletePolicy, explainAccess, getPolicies } from '../../../shared/usecases/policies';
import { person } from '../../support/principals';

const SUB = '/subscriptions/00000000-0000-0000-0000-000000000001';
const admin: Principal = person('admin@contoso.com', [], ['Jit.Admin']);
const alice: Principal = person('alice@contoso.com', [], []);

/** The policy set in memory, with a version that moves on every change, like the table's version row. */
class MemoryPolicies implements PolicyRepository {
  readonly rows = new Map<string, Policy>();
  version = 0;

  async getForScopes(scopes: string[]): Promise<Policy[]> {
    return scopes.flatMap((s) => (this.rows.has(s) ? [this.rows.get(s)!] : []));
  }
  async upsert(policy: Policy): Promise<void> {
    this.rows.set(policy.scope, policy);
    this.version++;
  }
  async *list(): AsyncIterable<Policy> {
    yield* this.rows.values();
  }
  async getSet(): Promise<PolicySet> {
    return { policies: [...this.rows.values()], version: this.version ? String(this.version) : undefined };
  }
  async applyChanges(changes: PolicyWrite[], version: string | undefined): Promise<void> {
    if ((version ?? '0') !== String(this.version)) throw new ConcurrencyConflict('changed meanwhile');
    for (const c of changes) {
      if (c.kind === 'put') this.rows.set(c.policy.scope, c.policy);
      else this.rows.delete(c.scope);
    }
    this.version++;
  }
}

/** Records what the hook was asked to do, as the network use cases would receive it. */
class RecordingEnforcement implements PolicyEnforcement {
  readonly calls: string[] = [];
  failWith?: Error;
  async sync(policy: Policy): Promise<void> {
    this.calls.push(`sync ${policy.scope} ${policy.ports.map((p) => p.port).join(',')}`);
    if (this.failWith) throw this.failWith;
  }
  async remove(policy: Policy): Promise<void> {
    this.calls.push(`remove ${policy.scope} ${policy.ports.map((p) => p.port).join(',')}`);
  }
}

function fakeDeps() {
  const policies = new MemoryPolicies();
  const enforcement = new RecordingEnforcement();
  const audit: AuditEvent[] = [];
  const logs: string[] = [];
  const deps = {
    policies,
    enforcement,
    audit: { append: async (e: AuditEvent) => void audit.push(e) },
    clock: { now: () => new Date('2025-01-01T00:00:00Z') },
    settings: { maxDurationInSeconds: 86400 },
    log: { info: () => undefined, warn: () => undefined, error: (e: string) => void logs.push(e) },
    reach: { policy: async () => [], vm: async () => [] },
    approvals: { signInAvailable: true },
  } as unknown as Deps;
  return { deps, policies, enforcement, audit, logs };
}

const policy = (rg: string, extra = '', ports = '[{ port: 22, maxDuration: PT1H }]') =>
  `  - { scope: ${SUB}/resourceGroups/${rg}, ports: ${ports}, allowedSourcePrefixes: [my-ip], requesters: ['*']${extra} }`;
const doc = (...policies: string[]) => ({ text: ['policies:', ...policies].join('\n'), source: 'p.yaml' });
const scope = (rg: string) => `${SUB}/resourcegroups/${rg}`;

test('applying a document stores it, audits each change with before and after, and the same again does nothing', async () => {
  const { deps, policies, audit } = fakeDeps();
  const first = await applyPolicies(deps, admin, doc(policy('a'), policy('b')), {
    clientAddress: '203.0.113.5',
  });
  assert.deepEqual(
    first.added.map((e) => e.scope),
    [scope('a'), scope('b')],
  );
  assert.deepEqual([...policies.rows.keys()].sort(), [scope('a'), scope('b')]);
  assert.deepEqual(
    audit.map((e) => [e.actor, e.action, e.clientAddress]),
    [
      ['admin@contoso.com', 'policy.added', '203.0.113.5'],
      ['admin@contoso.com', 'policy.added', '203.0.113.5'],
    ],
  );
  assert.deepEqual(JSON.parse(audit[0]!.detail!), {
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
  assert.equal(audit.length, 2, 'no audit event for no change');
  assert.equal(policies.version, 1, 'nothing written');

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
    audit.slice(2).map((e) => e.action),
    ['policy.changed', 'policy.removed'],
  );
  const changed = JSON.parse(audit[2]!.detail!);
  assert.deepEqual(changed.fields, ['ports']);
  assert.equal(changed.before.ports[0].maxDuration, 'PT1H');
  assert.equal(changed.after.ports[0].maxDuration, 'PT2H');
  assert.equal(JSON.parse(audit[3]!.detail!).after, null);
});

test('a dry run returns the diff and changes nothing', async () => {
  const { deps, policies, audit, enforcement } = fakeDeps();
  await applyPolicies(deps, admin, doc(policy('a')));
  const dry = await applyPolicies(deps, admin, doc(policy('b', ', enforce: true')), { dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.deepEqual(
    [dry.added.map((e) => e.scope), dry.removed.map((e) => e.scope)],
    [[scope('b')], [scope('a')]],
  );
  assert.deepEqual([...policies.rows.keys()], [scope('a')]);
  assert.equal(audit.length, 1);
  assert.deepEqual(enforcement.calls, []);
  const dryDelete = await deletePolicy(deps, admin, scope('a'), { dryRun: true });
  assert.deepEqual(
    dryDelete.removed.map((e) => e.scope),
    [scope('a')],
  );
  assert.deepEqual([...policies.rows.keys()], [scope('a')]);
});

test('only Jit.Admin may read or change policies', async () => {
  const { deps, policies, audit } = fakeDeps();
  await assert.rejects(applyPolicies(deps, alice, doc(policy('a'))), RoleRequired);
  await assert.rejects(applyPolicies(deps, alice, doc(policy('a')), { dryRun: true }), RoleRequired);
  await assert.rejects(getPolicies(deps, alice), RoleRequired);
  await assert.rejects(deletePolicy(deps, alice, scope('a')), RoleRequired);
  assert.equal(policies.rows.size, 0);
  assert.equal(audit.length, 0);
});

test('an invalid document applies nothing', async () => {
  const { deps, policies, audit } = fakeDeps();
  await applyPolicies(deps, admin, doc(policy('a')));
  await assert.rejects(
    applyPolicies(deps, admin, doc(policy('b'), policy('c', ', enforce: maybe'))),
    PolicyDocumentInvalid,
  );
  assert.deepEqual([...policies.rows.keys()], [scope('a')]);
  assert.equal(audit.length, 1);
});

test('a set changed by someone else meanwhile is a conflict, not a blind overwrite', async () => {
  const { deps, policies } = fakeDeps();
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

test('enforce: the hook syncs a policy that starts enforcing or changes ports, and removes one that stops', async () => {
  const { deps, enforcement } = fakeDeps();
  const on = ', enforce: true';
  await applyPolicies(deps, admin, doc(policy('a', on), policy('b'), policy('c', on)));
  assert.deepEqual(enforcement.calls, [`sync ${scope('a')} 22`, `sync ${scope('c')} 22`]);

  enforcement.calls.length = 0;
  await applyPolicies(
    deps,
    admin,
    doc(
      policy('a', ''), // turned off
      policy('b', on), // turned on
      policy('c', on, '[{ port: 22, maxDuration: PT1H }, { port: 3389, maxDuration: PT1H }]'), // ports changed
    ),
  );
  assert.deepEqual(enforcement.calls, [
    `remove ${scope('a')} 22`,
    `sync ${scope('b')} 22`,
    `sync ${scope('c')} 22,3389`,
  ]);

  enforcement.calls.length = 0;
  // Enforcing, but only the requesters changed: the baseline deny stays as it is.
  await applyPolicies(
    deps,
    admin,
    doc(
      policy('a'),
      policy('b', on).replace("['*']", '[user:x@y]'),
      policy('c', on, '[{ port: 22, maxDuration: PT1H }, { port: 3389, maxDuration: PT1H }]'),
    ),
  );
  assert.deepEqual(enforcement.calls, []);

  await applyPolicies(deps, admin, doc(policy('a')));
  assert.deepEqual(enforcement.calls, [`remove ${scope('b')} 22`, `remove ${scope('c')} 22,3389`]);

  enforcement.calls.length = 0;
  await applyPolicies(deps, admin, doc(policy('a'), policy('d', on)));
  await deletePolicy(deps, admin, scope('d'));
  assert.deepEqual(enforcement.calls, [`sync ${scope('d')} 22`, `remove ${scope('d')} 22`]);
});

test('a failing enforcement hook is reported as a warning; the set stays as applied', async () => {
  const { deps, enforcement, policies, logs } = fakeDeps();
  enforcement.failWith = new Error('ARM said no');
  const result = await applyPolicies(deps, admin, doc(policy('a', ', enforce: true')));
  assert.deepEqual(result.warnings, [
    `putting the baseline deny in place for ${scope('a')} failed: ARM said no`,
  ]);
  assert.ok(policies.rows.has(scope('a')));
  assert.deepEqual(logs, ['policy.enforcement-failed']);
});

test('deleting a policy removes it and audits it; an unknown scope is PolicyNotFound', async () => {
  const { deps, policies, audit } = fakeDeps();
  await applyPolicies(deps, admin, doc(policy('a'), policy('b')));
  const result = await deletePolicy(deps, admin, `${SUB}/resourceGroups/A`);
  assert.deepEqual(
    result.removed.map((e) => e.scope),
    [scope('a')],
  );
  assert.deepEqual([...policies.rows.keys()], [scope('b')]);
  assert.equal(audit.at(-1)?.action, 'policy.removed');
  await assert.rejects(deletePolicy(deps, admin, scope('a')), PolicyNotFound);
});

test('explain: a requester of the deciding policy or an admin may ask; anyone else gets the request refusal', async () => {
  const { deps } = fakeDeps();
  await applyPolicies(deps, admin, doc(policy('a').replace("['*']", '[user:alice@contoso.com]')));
  const vm = `${SUB}/resourceGroups/a/providers/Microsoft.Compute/virtualMachines/vm1`;
  const mine = await explainAccess(deps, alice, { vm, port: '22' });
  assert.equal(mine.decidedBy, scope('a'));
  assert.deepEqual(mine.port, { port: 22, protocol: 'Tcp', allowed: true, maxDuration: 'PT1H' });
  const bob: Principal = person('bob@contoso.com', [], []);
  const refused = await explainAccess(deps, bob, { vm }).catch((e: unknown) => e);
  assert.ok(refused instanceof AccessNotAllowed && !refused.disclose);
  const uncovered = vm.replace('/a/', '/elsewhere/');
  const other = await explainAccess(deps, alice, { vm: uncovered }).catch((e: unknown) => e);
  assert.deepEqual(other, refused, 'the same refusal whether or not a policy covers the VM');
  assert.equal((await explainAccess(deps, admin, { vm: uncovered })).decidedBy, undefined);
  await assert.rejects(explainAccess(deps, admin, { vm, port: '70000' }), /port: must be a port number/);
  await assert.rejects(explainAccess(deps, admin, { vm: 'demo-vm' }), /vm: must be an ARM resource id/);
});
