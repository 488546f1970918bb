import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bandClearOfDefender, describeShadow, findShadow } from '../../../shared/domain/effectiveAccess';
import { missingActions } from '../../../shared/domain/permissions';
import type { SecurityRuleView } from '../../../shared/domain/types';

const rule = (o: Partial<SecurityRuleView>): SecurityRuleView => ({
  name: 'r',
  priority: 500,
  direction: 'Inbound',
  access: 'Deny',
  protocol: '*',
  sourceAddressPrefixes: ['*'],
  destinationAddressPrefixes: ['*'],
  destinationPortRanges: ['*'],
  provisioningState: 'Succeeded',
  ...o,
});
const grant = {
  name: 'jit-01j00000000000000000000000',
  priority: 1001,
  protocol: 'Tcp',
  sourcePrefix: '203.0.113.7/32',
  destinations: ['10.0.1.4'],
  ports: [22, 3389],
};

test("Defender's deny rule at a lower number shadows the grant for the ports it names", () => {
  const defender = rule({
    name: 'SecurityCenter-JITRule_-1_ABCDEF0123456789ABCDEF0123456789',
    priority: 1000,
    destinationAddressPrefixes: ['10.0.1.4'],
    destinationPortRanges: ['22', '5985'],
  });
  const shadow = findShadow([defender], grant);
  assert.deepEqual(shadow, { rule: defender.name, priority: 1000, ports: [22] });
  assert.equal(describeShadow(shadow), `${defender.name} (deny, priority 1000) for port 22`);
});

test("the band moves above Defender's deny rule where it would shadow the grant; anyone else's rule moves nothing", () => {
  const band = { min: 1000, max: 1999 };
  const allow = { ...grant, priority: undefined };
  const defenderDeny = (priority: number) =>
    rule({
      name: 'SecurityCenter-JITRule_-1_ABCDEF0123456789ABCDEF0123456789',
      priority,
      destinationAddressPrefixes: ['10.0.1.4'],
      destinationPortRanges: ['22', '3389'],
    });
  assert.deepEqual(bandClearOfDefender([defenderDeny(1000)], band, allow), { min: 900, max: 999 });
  assert.deepEqual(bandClearOfDefender([defenderDeny(1399)], band, allow), { min: 1000, max: 1398 });
  assert.deepEqual(bandClearOfDefender([defenderDeny(150)], band, allow), { min: 100, max: 149 });
  assert.deepEqual(bandClearOfDefender([defenderDeny(100)], band, allow), band, 'nothing is above 100');
  assert.deepEqual(bandClearOfDefender([defenderDeny(2410)], band, allow), band, 'below the band: no shadow');
  assert.deepEqual(
    bandClearOfDefender([{ ...defenderDeny(1000), destinationPortRanges: ['5985'] }], band, allow),
    band,
    'another port',
  );
  assert.deepEqual(
    bandClearOfDefender([{ ...defenderDeny(1000), name: 'deny-ssh' }], band, allow),
    band,
    "an operator's deny rule",
  );
  assert.deepEqual(
    bandClearOfDefender([{ ...defenderDeny(1000), access: 'Allow' }], band, allow),
    band,
    "Defender's allow rule",
  );
});

test('a deny rule is no shadow when it comes later, or misses the source, address, protocol or port', () => {
  assert.equal(findShadow([rule({ priority: 2000 })], grant), undefined, 'later');
  assert.equal(
    findShadow([rule({ sourceAddressPrefixes: ['198.51.100.0/24'] })], grant),
    undefined,
    'source',
  );
  assert.equal(
    findShadow([rule({ destinationAddressPrefixes: ['10.0.2.0/24'] })], grant),
    undefined,
    'address',
  );
  assert.equal(findShadow([rule({ protocol: 'Udp' })], grant), undefined, 'protocol');
  assert.equal(findShadow([rule({ destinationPortRanges: ['80-443'] })], grant), undefined, 'port');
  assert.equal(findShadow([rule({ access: 'Allow' })], grant), undefined, 'an allow rule');
  assert.equal(findShadow([rule({ name: grant.name })], grant), undefined, 'its own rule (neutralised)');
});

test('wider sources, the VNet and the Internet tag shadow what they cover', () => {
  assert.ok(findShadow([rule({ sourceAddressPrefixes: ['203.0.113.0/24'] })], grant));
  assert.ok(findShadow([rule({ sourceAddressPrefixes: ['Internet'] })], grant), 'a public source');
  assert.equal(
    findShadow([rule({ sourceAddressPrefixes: ['Internet'] })], { ...grant, sourcePrefix: '10.9.0.0/16' }),
    undefined,
    'a private source is not on the Internet',
  );
  assert.ok(findShadow([rule({ destinationAddressPrefixes: ['VirtualNetwork'] })], grant));
  assert.ok(findShadow([rule({ destinationPortRanges: ['20-30'] })], grant));
  // A grant from anywhere is shadowed only by a deny from anywhere.
  assert.equal(
    findShadow([rule({ sourceAddressPrefixes: ['0.0.0.0/0'] })], { ...grant, sourcePrefix: '*' }),
    undefined,
  );
  assert.ok(findShadow([rule({})], { ...grant, sourcePrefix: '*' }));
});

test('permissions: Actions minus NotActions, with wildcards, added up over assignments', () => {
  const wanted = [
    'Microsoft.Network/networkSecurityGroups/securityRules/write',
    'Microsoft.Network/networkSecurityGroups/securityRules/delete',
  ];
  assert.deepEqual(missingActions([{ actions: ['Microsoft.Network/*'], notActions: [] }], wanted), []);
  assert.deepEqual(missingActions([{ actions: ['*'], notActions: ['Microsoft.Network/*/delete'] }], wanted), [
    'Microsoft.Network/networkSecurityGroups/securityRules/delete',
  ]);
  assert.deepEqual(
    missingActions(
      [
        { actions: ['*/read'], notActions: [] },
        { actions: ['microsoft.network/networksecuritygroups/securityrules/write'], notActions: [] },
      ],
      wanted,
    ),
    ['Microsoft.Network/networkSecurityGroups/securityRules/delete'],
  );
  assert.deepEqual(missingActions([], wanted), wanted);
});
