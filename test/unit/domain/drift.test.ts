import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findDrift, isBroadSource, portInRange, ruleFingerprint } from '../../../shared/domain/drift';
import type { SecurityRuleView } from '../../../shared/domain/types';

const rule = (over: Partial<SecurityRuleView>): SecurityRuleView => ({
  name: 'allow-ssh',
  priority: 300,
  direction: 'Inbound',
  access: 'Allow',
  protocol: 'Tcp',
  sourceAddressPrefixes: ['*'],
  destinationAddressPrefixes: ['*'],
  destinationPortRanges: ['22'],
  provisioningState: 'Succeeded',
  ...over,
});
const surface = { ports: [22, 3389], addresses: ['10.0.1.4'] };

test('a broad source is anywhere, the Internet, or a wide public prefix; private ranges are design', () => {
  for (const s of ['*', 'Internet', '0.0.0.0/0', '::/0', '20.0.0.0/8', 'Any']) assert.ok(isBroadSource(s), s);
  for (const s of [
    '203.0.113.7/32',
    '198.51.100.0/24',
    '10.0.0.0/8',
    'VirtualNetwork',
    '192.168.0.0/16',
    '10.0.0.4',
  ])
    assert.ok(!isBroadSource(s), s);
});

test('port ranges', () => {
  assert.ok(portInRange(22, '*'));
  assert.ok(portInRange(22, '20-25'));
  assert.ok(!portInRange(22, '23-25'));
  assert.ok(portInRange(3389, '3389'));
});

test("someone's allow of a protected port from anywhere is drift; ours, denies and narrow sources are not", () => {
  const drift = findDrift(
    [
      rule({}),
      rule({ name: 'range', destinationPortRanges: ['20-30'] }),
      rule({ name: 'any-port', destinationPortRanges: ['*'], protocol: '*' }),
      rule({ name: 'to-vm', destinationAddressPrefixes: ['10.0.1.0/24'] }),
      rule({ name: 'narrow', sourceAddressPrefixes: ['203.0.113.7/32'] }),
      rule({ name: 'deny', access: 'Deny' }),
      rule({ name: 'outbound', direction: 'Outbound' }),
      rule({ name: 'other-port', destinationPortRanges: ['443'] }),
      rule({ name: 'other-vm', destinationAddressPrefixes: ['10.0.2.4'] }),
      rule({ name: 'icmp', protocol: 'Icmp' }),
      rule({ name: 'jit-01j0abcdefghjkmnpqrstvwxyz' }),
      rule({ name: 'jit-baseline-0123456789abcdef', access: 'Allow' }),
    ],
    surface,
  );
  assert.deepEqual(
    drift.map((r) => r.name),
    ['allow-ssh', 'range', 'any-port', 'to-vm'],
  );
  assert.deepEqual(findDrift([rule({})], { ports: [], addresses: [] }), []);
});

test('a fingerprint changes with the rule, not with its position', () => {
  const a = ruleFingerprint(rule({}));
  assert.equal(a, ruleFingerprint(rule({ sourceAddressPrefixes: ['*'] })));
  assert.notEqual(a, ruleFingerprint(rule({ priority: 301 })));
  assert.notEqual(a, ruleFingerprint(rule({ destinationPortRanges: ['22', '23'] })));
});
