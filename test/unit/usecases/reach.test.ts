/**
 * The deployment's reach (shared/usecases/reach.ts), seen where an administrator sees it: the warnings of
 * `jit policy apply` (dry run or not) and of `jit policy explain`. A VM whose network the deployment's identity
 * cannot read, or an NSG it cannot write, is found when the policy is applied, not when someone asks for access.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NSG_FLUSH_ACTIONS, NSG_RULE_ACTIONS } from '../../../shared/domain/permissions';
import { applyPolicies, explainAccess } from '../../../shared/usecases/policies';
import { SUBSCRIPTION as SUB, aPrincipal, anAdmin } from '../../support/builders';
import { memoryWorld } from '../../support/world';

const admin = anAdmin();
const doc = (rg: string, extra = '') => ({
  text: [
    'policies:',
    `  - { scope: ${SUB}/resourceGroups/${rg}, ports: [{ port: 22, maxDuration: PT1H }], allowedSourcePrefixes: [my-ip], requesters: ['*']${extra} }`,
  ].join('\n'),
  source: 'p.yaml',
});

test('a policy over VMs the deployment fully reaches applies without warnings', async () => {
  const w = memoryWorld();
  w.addVm({ resourceGroup: 'app' });
  w.addVm({ resourceGroup: 'app' });
  const result = await applyPolicies(w.deps, admin, doc('app'));
  assert.deepEqual(result.warnings, []);
});

test('an NSG whose rules the role cannot write is named with the missing actions; the policy is still applied', async () => {
  const w = memoryWorld();
  const vm = w.addVm({ resourceGroup: 'app' });
  // The role reads rules but may not write or delete them (a hub NSG outside the role's scopes, say).
  w.network.permissions = [
    { actions: ['Microsoft.Network/networkSecurityGroups/securityRules/read'], notActions: [] },
  ];
  const result = await applyPolicies(w.deps, admin, doc('app'));
  assert.equal(result.warnings.length, 1, result.warnings.join('\n'));
  const [warning] = result.warnings;
  assert.ok(warning!.startsWith(`${vm.nsgIds[0]} (in front of ${vm.vmId})`), warning);
  for (const action of NSG_RULE_ACTIONS.filter((a) => !a.endsWith('securityRules/read')))
    assert.ok(warning!.includes(action), `${action} missing from: ${warning}`);
  assert.ok(!warning!.includes('securityRules/read'), warning);
  assert.deepEqual(
    w.audit.events().map((e) => e.action),
    ['policy.added'],
    'a warning never refuses the change',
  );
});

test('a VM whose path cannot be read, and an NSG whose permissions cannot be read, are each one warning', async () => {
  const w = memoryWorld();
  const hidden = w.addVm({ resourceGroup: 'app' });
  const hubbed = w.addVm({ resourceGroup: 'app' });
  w.network.deny(hidden.vmId, 'Microsoft.Compute/virtualMachines/read');
  w.network.deny(hubbed.nsgIds[0]!, 'Microsoft.Authorization/permissions/read');
  const result = await applyPolicies(w.deps, admin, doc('app'), { dryRun: true });
  assert.equal(result.warnings.length, 2, result.warnings.join('\n'));
  assert.ok(
    result.warnings.some((x) => x.startsWith(`${hidden.vmId}:`) && x.includes('virtualMachines/read')),
    result.warnings.join('\n'),
  );
  assert.ok(
    result.warnings.some(
      (x) =>
        x.startsWith(`${hubbed.nsgIds[0]} (in front of ${hubbed.vmId})`) && x.includes('permissions/read'),
    ),
    result.warnings.join('\n'),
  );
  assert.deepEqual(w.audit.events(), [], 'a dry run changes nothing');
});

test('cutting sessions also needs the NSG write: only a policy with cutSessions warns about it', async () => {
  const w = memoryWorld();
  w.addVm({ resourceGroup: 'app' });
  w.network.permissions = [{ actions: [...NSG_RULE_ACTIONS], notActions: [] }];
  const plain = await applyPolicies(w.deps, admin, doc('app'), { dryRun: true });
  assert.deepEqual(plain.warnings, []);
  const cutting = await applyPolicies(w.deps, admin, doc('app', ', cutSessions: true'), { dryRun: true });
  assert.equal(cutting.warnings.length, 1, cutting.warnings.join('\n'));
  for (const action of NSG_FLUSH_ACTIONS)
    assert.ok(cutting.warnings[0]!.includes(action), cutting.warnings[0]);
});

test('a large scope is sampled, and the warning says how much of it was checked', async () => {
  const w = memoryWorld();
  for (let i = 0; i < 23; i++) w.addVm({ resourceGroup: 'fleet' });
  const result = await applyPolicies(w.deps, admin, doc('fleet'), { dryRun: true });
  assert.deepEqual(result.warnings, [
    `${SUB}/resourcegroups/fleet: checked the network of 20 of its 23 VMs only`,
  ]);
});

test('explain shows an administrator what the deployment cannot do for that VM, and a requester nothing of it', async () => {
  const w = memoryWorld();
  const vm = w.addVm({ resourceGroup: 'app' });
  await applyPolicies(w.deps, admin, doc('app'));
  w.network.permissions = [
    { actions: ['Microsoft.Network/networkSecurityGroups/securityRules/read'], notActions: [] },
  ];
  const forAdmin = await explainAccess(w.deps, admin, { vm: vm.vmId, port: '22' });
  assert.equal(forAdmin.warnings?.length, 1, JSON.stringify(forAdmin.warnings));
  assert.ok(forAdmin.warnings[0]!.includes('securityRules/write'), forAdmin.warnings[0]);
  const forRequester = await explainAccess(w.deps, aPrincipal('alice@example.com'), {
    vm: vm.vmId,
    port: '22',
  });
  assert.equal(forRequester.warnings, undefined, 'NSG names and scopes are for administrators');
});
