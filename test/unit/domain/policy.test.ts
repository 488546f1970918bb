import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessNotAllowed, InvalidRequest } from '../../../shared/domain/errors';
import { decide, principalMatches, selectPolicy } from '../../../shared/domain/policy';
import { scopesOf } from '../../../shared/domain/resourceId';
import type { Policy, Principal } from '../../../shared/domain/types';
import { person } from '../../support/principals';

const VM =
  '/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/Prod-RG/providers/Microsoft.Compute/virtualMachines/db1';
const alice: Principal = person('alice@contoso.com', ['g-ops'], []);

function policy(scope: string, overrides: Partial<Policy> = {}): Policy {
  return {
    scope,
    ports: [{ port: 22, protocol: 'Tcp', maxDurationInSeconds: 3600 }],
    allowedSourcePrefixes: ['203.0.113.0/24', 'my-ip'],
    requesters: ['*'],
    approval: { mode: 'auto', approvers: [], required: 0, timeoutInSeconds: 600 },
    justification: { required: false },
    enforce: false,
    ...overrides,
  };
}

const ask = (o: Partial<Parameters<typeof decide>[1]> = {}) => ({
  vmId: VM,
  ports: [22],
  durationInSeconds: 1800,
  ...o,
});

test('scopes of a VM go from most to least specific, lower-cased', () => {
  assert.deepEqual(scopesOf(VM), [
    VM.toLowerCase(),
    '/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/prod-rg',
    '/subscriptions/00000000-0000-4000-8000-000000000001',
  ]);
});

test('the most specific policy wins', () => {
  const [vm, rg, sub] = scopesOf(VM) as [string, string, string];
  const found = [policy(sub), policy(rg), policy(vm)];
  assert.equal(selectPolicy(scopesOf(VM), found)?.scope, vm);
  assert.equal(selectPolicy(scopesOf(VM), [policy(sub), policy(rg)])?.scope, rg);
  assert.equal(selectPolicy(scopesOf(VM), [policy(sub)])?.scope, sub);
  assert.equal(selectPolicy(scopesOf(VM), []), undefined);
});

test('requesters match by user, group or anyone', () => {
  assert.equal(principalMatches(alice, ['*']), true);
  assert.equal(principalMatches(alice, ['user:ALICE@contoso.com']), true);
  assert.equal(principalMatches(alice, ['group:g-ops']), true);
  assert.equal(principalMatches(alice, ['user:bob@contoso.com', 'group:g-dev']), false);
});

test('an allowed ask is granted with the source resolved', () => {
  const d = decide(policy('x'), ask({ sourcePrefix: '203.0.113.7' }), alice, '198.51.100.9');
  assert.deepEqual(d, {
    policyScope: 'x',
    protocol: 'Tcp',
    sourcePrefix: '203.0.113.7/32',
    approvalMode: 'auto',
  });
  const mine = decide(policy('x'), ask(), alice, '198.51.100.9');
  assert.equal(mine.sourcePrefix, '198.51.100.9/32');
});

test('no policy and not a requester give the same undisclosed refusal', () => {
  const a = assert.throws(() => decide(undefined, ask(), alice, '1.2.3.4'), AccessNotAllowed);
  void a;
  for (const p of [undefined, policy('x', { requesters: ['user:bob@contoso.com'] })]) {
    try {
      decide(p, ask(), alice, '198.51.100.9');
      assert.fail('expected a refusal');
    } catch (e) {
      assert.ok(e instanceof AccessNotAllowed);
      assert.equal(e.disclose, false);
    }
  }
});

test('ports, durations and sources outside the policy are refused with the reason', () => {
  assert.throws(
    () => decide(policy('x'), ask({ ports: [3389] }), alice, '1.2.3.4'),
    /: port 3389\/Tcp is not allowed by the policy; it allows 22\/Tcp up to 1h$/,
  );
  assert.throws(() => decide(policy('x'), ask({ protocol: 'Udp' }), alice, '1.2.3.4'), /port 22\/Udp/);
  assert.throws(
    () => decide(policy('x'), ask({ durationInSeconds: 3601 }), alice, '1.2.3.4'),
    /: 1h1s is longer than the policy allows for port 22: at most 1h$/,
  );
  assert.throws(
    () => decide(policy('x'), ask({ sourcePrefix: '198.51.100.0/24' }), alice, '1.2.3.4'),
    /not within the policy's allowed source prefixes: /,
  );
  assert.throws(() => decide(policy('x'), ask({ sourcePrefix: '*' }), alice, '1.2.3.4'), /not within/);
  assert.throws(
    () => decide(policy('x'), ask({ sourcePrefix: '0.0.0.0/0' }), alice, '1.2.3.4'),
    /not within/,
  );
  assert.throws(() => decide(policy('x'), ask({ sourcePrefix: 'nope' }), alice, '1.2.3.4'), InvalidRequest);
});

test('a broad source is allowed only where the policy says so', () => {
  const open = policy('x', { allowedSourcePrefixes: ['*'] });
  assert.equal(decide(open, ask({ sourcePrefix: '*' }), alice, undefined).sourcePrefix, '*');
  const v4any = policy('x', { allowedSourcePrefixes: ['0.0.0.0/0'] });
  assert.equal(decide(v4any, ask({ sourcePrefix: '0.0.0.0/0' }), alice, undefined).sourcePrefix, '0.0.0.0/0');
  assert.throws(() => decide(v4any, ask({ sourcePrefix: '*' }), alice, undefined), /not within/);
});

test('my-ip allows only the caller address, and needs one', () => {
  const p = policy('x', { allowedSourcePrefixes: ['my-ip'] });
  assert.equal(
    decide(p, ask({ sourcePrefix: '198.51.100.9/32' }), alice, '198.51.100.9').sourcePrefix,
    '198.51.100.9/32',
  );
  assert.throws(() => decide(p, ask({ sourcePrefix: '198.51.100.10' }), alice, '198.51.100.9'), /not within/);
  assert.throws(() => decide(p, ask(), alice, undefined), /caller address could not be determined/);
});

test('justification rules are enforced as field errors', () => {
  const p = policy('x', { justification: { required: true, pattern: '^(INC|CHG)[0-9]{6}' } });
  assert.throws(
    () => decide(p, ask(), alice, '1.2.3.4'),
    (e: unknown) => e instanceof InvalidRequest && e.problems[0]?.field === 'justification',
  );
  assert.throws(() => decide(p, ask({ justification: 'because' }), alice, '1.2.3.4'), /must match/);
  assert.equal(
    decide(p, ask({ justification: 'INC123456 db down', sourcePrefix: '203.0.113.1' }), alice, '1.2.3.4')
      .policyScope,
    'x',
  );
});

test('"internet" is the Internet service tag, never *', () => {
  const open = policy('/subscriptions/sub1', { allowedSourcePrefixes: ['*'] });
  assert.equal(decide(open, ask({ sourcePrefix: 'internet' }), alice, undefined).sourcePrefix, 'Internet');
  assert.equal(decide(open, ask({ sourcePrefix: 'INTERNET' }), alice, undefined).sourcePrefix, 'Internet');
  // A policy that names the tag allows it, and not `*`, which is broader.
  const tagged = policy('/subscriptions/sub1', { allowedSourcePrefixes: ['Internet'] });
  assert.equal(decide(tagged, ask({ sourcePrefix: 'Internet' }), alice, undefined).sourcePrefix, 'Internet');
  assert.throws(() => decide(tagged, ask({ sourcePrefix: '*' }), alice, undefined), AccessNotAllowed);
});
