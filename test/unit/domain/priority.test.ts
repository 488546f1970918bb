import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lowestFreePriority, planPriority } from '../../../shared/domain/priority';
import {
  baselineRuleName,
  grantIdOfRuleName,
  isBaselineRuleName,
  isJitRuleName,
  isOwnRuleName,
  ruleNameFor,
} from '../../../shared/domain/ruleNames';
import { assertTransition, canTransition } from '../../../shared/domain/state';
import type { SecurityRuleView } from '../../../shared/domain/types';

const rule = (
  priority: number,
  direction: 'Inbound' | 'Outbound' = 'Inbound',
  name = `r${priority}`,
): SecurityRuleView => ({
  name,
  priority,
  direction,
  access: 'Allow',
  protocol: 'Tcp',
  sourceAddressPrefixes: ['*'],
  destinationAddressPrefixes: ['*'],
  destinationPortRanges: ['22'],
  provisioningState: 'Succeeded',
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

test('planning keeps a rule where it already is, unless that place is shared or outside the band', () => {
  const band = { min: 1000, max: 1004 };
  const own = 'jit-01j0abcdefghjkmnpqrstvwxyz';
  // A retry after a write that landed: the rule keeps its priority.
  assert.equal(planPriority([rule(1000), rule(1003, 'Inbound', own)], band, own), 1003);
  // Its own priority does not count as taken when planning anew.
  assert.equal(planPriority([rule(1000, 'Inbound', own)], band, own, new Set([1000])), 1001);
  // Someone else took the same priority (written out of band): move.
  assert.equal(planPriority([rule(1000), rule(1000, 'Inbound', own)], band, own), 1001);
  // Outside the band (an operator moved it): back into the band.
  assert.equal(planPriority([rule(500, 'Inbound', own)], band, own), 1000);
  // Names compare without case, as ARM's do.
  assert.equal(planPriority([rule(1002, 'Inbound', own.toUpperCase())], band, own), 1002);
});

test('a full band, a band full but for lost races, and a band shared with outbound rules', () => {
  const band = { min: 1000, max: 1002 };
  const full = [rule(1000), rule(1001), rule(1002)];
  assert.equal(planPriority(full, band, 'jit-x'), undefined);
  assert.equal(planPriority([rule(1000)], band, 'jit-x', new Set([1001, 1002])), undefined);
  assert.equal(planPriority([rule(1000, 'Outbound'), rule(1001, 'Outbound')], band, 'jit-x'), 1000);
  // The last free priority of a crowded band is found.
  const crowded = Array.from({ length: 999 }, (_, i) => rule(1000 + i));
  assert.equal(planPriority(crowded, { min: 1000, max: 1999 }, 'jit-x'), 1999);
});

test('baseline rule names are ours, stable per port set, family and protocol, and never taken for a grant rule', () => {
  const name = baselineRuleName([22, 3389], 'ipv4', 'Tcp');
  assert.match(name, /^jit-baseline-[0-9a-f]{16}$/);
  assert.equal(name, baselineRuleName([3389, 22, 22], 'ipv4', 'TCP'));
  assert.notEqual(name, baselineRuleName([22, 3389], 'ipv6', 'Tcp'));
  assert.notEqual(name, baselineRuleName([22], 'ipv4', 'Tcp'));
  assert.ok(isBaselineRuleName(name));
  assert.ok(!isJitRuleName(name));
  assert.equal(grantIdOfRuleName(name), undefined);
  assert.ok(isOwnRuleName(name));
  assert.ok(!isOwnRuleName('jit-foo'));
  assert.ok(!isOwnRuleName('deny-mgmt-inbound'));
  assert.equal(grantIdOfRuleName('jit-01j0abcdefghjkmnpqrstvwxyz'), '01J0ABCDEFGHJKMNPQRSTVWXYZ');
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
