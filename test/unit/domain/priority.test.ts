import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isJitRuleName, lowestFreePriority, ruleNameFor } from '../../../shared/domain/priority';
import { assertTransition, canTransition } from '../../../shared/domain/state';
import type { SecurityRuleView } from '../../../shared/domain/types';

const rule = (priority: number, direction: 'Inbound' | 'Outbound' = 'Inbound'): SecurityRuleView => ({
  name: `r${priority}`,
  priority,
  direction,
  access: 'Allow',
  protocol: 'Tcp',
  sourceAddressPrefixes: ['*'],
  destinationAddressPrefixes: ['*'],
  destinationPortRanges: ['22'],
});

test('the lowest free inbound priority in the band is chosen', () => {
  const band = { min: 1000, max: 1003 };
  assert.equal(lowestFreePriority([], band), 1000);
  assert.equal(lowestFreePriority([rule(1000), rule(1001)], band), 1002);
  // Outbound rules do not conflict with inbound ones at the same priority.
  assert.equal(lowestFreePriority([rule(1000, 'Outbound')], band), 1000);
  // Priorities outside the band do not matter.
  assert.equal(lowestFreePriority([rule(999), rule(4000)], band), 1000);
  // A priority that just lost a race is skipped.
  assert.equal(lowestFreePriority([rule(1000)], band, new Set([1001])), 1002);
  assert.equal(lowestFreePriority([rule(1000), rule(1001), rule(1002), rule(1003)], band), undefined);
});

test('rule names derive from the grant id and are recognisable', () => {
  const name = ruleNameFor('01J0ABCDEFGHJKMNPQRSTVWXYZ');
  assert.equal(name, 'jit-01j0abcdefghjkmnpqrstvwxyz');
  assert.equal(isJitRuleName(name), true);
  assert.equal(isJitRuleName('allow-ssh'), false);
  assert.equal(isJitRuleName('jit-short'), false);
});

test('request states move only along the lifecycle', () => {
  assert.equal(canTransition('submitted', 'approved'), true);
  assert.equal(canTransition('approved', 'active'), true);
  assert.equal(canTransition('active', 'expired'), true);
  assert.equal(canTransition('expired', 'active'), false);
  assert.equal(canTransition('denied', 'approved'), false);
  assert.equal(canTransition('submitted', 'active'), false);
  assert.throws(() => assertTransition('expired', 'active'), /cannot become active/);
});
