import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baselineSpecOf, planBaseline, ruleMatchesSpec } from '../../../shared/domain/baseline';
import { isBaselineRuleName, isJitRuleName } from '../../../shared/domain/ruleNames';
import type { Policy, SecurityRuleView, VmNetworkPath } from '../../../shared/domain/types';

const vmId = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1';
const path: VmNetworkPath = {
  vmId,
  vmName: 'vm1',
  privateAddresses: ['10.0.1.4', 'fd00::4'],
  nsgIds: ['subnet-nsg', 'nic-nsg'],
  guards: [
    { nsgId: 'subnet-nsg', addresses: ['10.0.1.4', 'fd00::4'] },
    { nsgId: 'nic-nsg', addresses: ['10.0.1.4'] },
  ],
  unguardedAddresses: [],
};
const policy = (enforce: boolean): Policy => ({
  scope: '/subscriptions/s/resourcegroups/rg',
  ports: [
    { port: 3389, protocol: 'Tcp', maxDurationInSeconds: 3600 },
    { port: 22, protocol: 'Tcp', maxDurationInSeconds: 3600 },
    { port: 3389, protocol: 'Udp', maxDurationInSeconds: 3600 },
  ],
  allowedSourcePrefixes: ['my-ip'],
  requesters: ['*'],
  approval: { mode: 'auto', approvers: [], required: 0, timeoutInSeconds: 60 },
  justification: { required: false },
  enforce,
});

test('a policy without enforce asks for no baseline', () => {
  assert.deepEqual(planBaseline(path, policy(false)), []);
});

test('one share per NSG, family and protocol, named so it is never taken for a grant rule', () => {
  const rules = planBaseline(path, policy(true));
  assert.deepEqual(
    rules.map((r) => [r.nsgId, r.family, r.protocol, r.ports, r.destinations]),
    [
      ['subnet-nsg', 'ipv4', 'Tcp', [22, 3389], ['10.0.1.4']],
      ['subnet-nsg', 'ipv4', 'Udp', [3389], ['10.0.1.4']],
      ['subnet-nsg', 'ipv6', 'Tcp', [22, 3389], ['fd00::4']],
      ['subnet-nsg', 'ipv6', 'Udp', [3389], ['fd00::4']],
      ['nic-nsg', 'ipv4', 'Tcp', [22, 3389], ['10.0.1.4']],
      ['nic-nsg', 'ipv4', 'Udp', [3389], ['10.0.1.4']],
    ],
  );
  for (const r of rules) {
    assert.ok(isBaselineRuleName(r.ruleName), r.ruleName);
    assert.ok(!isJitRuleName(r.ruleName), r.ruleName);
  }
  // The same ports, family and protocol get the same name in every NSG, and different ones differ.
  assert.equal(rules[0]?.ruleName, rules[4]?.ruleName);
  assert.equal(new Set(rules.slice(0, 4).map((r) => r.ruleName)).size, 4);
});

test('VMs behind one NSG share one rule per port set and family, denying towards all their addresses', () => {
  const other: VmNetworkPath = {
    ...path,
    vmId: vmId.replace('vm1', 'vm2'),
    vmName: 'vm2',
    privateAddresses: ['10.0.1.5'],
    guards: [{ nsgId: 'subnet-nsg', addresses: ['10.0.1.5'] }],
  };
  const tcpV4 = (p: VmNetworkPath) =>
    planBaseline(p, policy(true)).filter(
      (r) => r.nsgId === 'subnet-nsg' && r.family === 'ipv4' && r.protocol === 'Tcp',
    );
  const members = [...tcpV4(path), ...tcpV4(other)];
  assert.equal(members.length, 2);
  assert.equal(members[0]?.ruleName, members[1]?.ruleName, 'one rule, two VMs');
  const spec = baselineSpecOf(members, 2000);
  assert.deepEqual(spec.destinationAddressPrefixes, ['10.0.1.4', '10.0.1.5']);
  assert.match(spec.description, /to 2 VMs/);
  assert.throws(() => baselineSpecOf([], 2000), RangeError);
});

test('the spec denies from anywhere, and a rule holding it matches whatever its priority', () => {
  const [b] = planBaseline(path, policy(true));
  const spec = baselineSpecOf([b!], 2000);
  assert.equal(spec.access, 'Deny');
  assert.equal(spec.sourceAddressPrefix, '*');
  assert.deepEqual(spec.destinationPortRanges, ['22', '3389']);
  assert.ok(spec.description.length <= 140);
  const view: SecurityRuleView = {
    name: b!.ruleName.toUpperCase(),
    priority: 2005,
    direction: 'Inbound',
    access: 'Deny',
    protocol: 'TCP',
    sourceAddressPrefixes: ['*'],
    destinationAddressPrefixes: ['10.0.1.4'],
    destinationPortRanges: ['3389', '22'],
    provisioningState: 'Succeeded',
  };
  assert.ok(ruleMatchesSpec(view, spec));
  assert.ok(!ruleMatchesSpec({ ...view, access: 'Allow' }, spec));
  assert.ok(!ruleMatchesSpec({ ...view, destinationPortRanges: ['22'] }, spec));
});
