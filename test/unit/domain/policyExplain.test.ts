import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicyDocument } from '../../../shared/domain/policyDocument';
import { explainPolicy } from '../../../shared/domain/policyExplain';
import { scopesOf } from '../../../shared/domain/resourceId';
import type { Principal } from '../../../shared/domain/types';
import { person } from '../../support/principals';

const SUB = '/subscriptions/00000000-0000-0000-0000-000000000001';
const VM = `${SUB}/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/db1`;
const alice: Principal = person('alice@contoso.com', [], []);
const policies = parsePolicyDocument(
  [
    'policies:',
    `  - { scope: ${SUB}, ports: [{ port: 22, maxDuration: PT8H }, { port: 5432, maxDuration: PT8H }], allowedSourcePrefixes: [my-ip], requesters: ['*'] }`,
    `  - { scope: ${SUB}/resourceGroups/rg, ports: [{ port: 22, maxDuration: PT1H }], allowedSourcePrefixes: [my-ip], requesters: ['user:alice@contoso.com'] }`,
  ].join('\n'),
  { source: 'p.yaml', maxDurationInSeconds: 86400 },
);

test('the most specific scope with a policy decides, and broader policies add nothing to it', () => {
  const e = explainPolicy(VM, scopesOf(VM), policies, alice, { port: 5432, protocol: 'Tcp' });
  assert.deepEqual(
    e.checked.map((c) => [c.level, c.hasPolicy, c.decides]),
    [
      ['vm', false, false],
      ['resourceGroup', true, true],
      ['subscription', true, false],
    ],
  );
  assert.equal(e.decidedBy, `${SUB}/resourcegroups/rg`);
  assert.equal(e.callerIsRequester, true);
  // The subscription allows 5432, but the resource group's policy decides, and it does not.
  assert.deepEqual(e.port, { port: 5432, protocol: 'Tcp', allowed: false });
  const ssh = explainPolicy(VM, scopesOf(VM), policies, alice, { port: 22, protocol: 'Tcp' });
  assert.deepEqual(ssh.port, { port: 22, protocol: 'Tcp', allowed: true, maxDuration: 'PT1H' });
});

test('a VM no scope covers has no deciding policy, and a non-requester is told so', () => {
  const other = VM.replace('/RG/', '/other/');
  const bob: Principal = person('bob@contoso.com', [], []);
  assert.equal(explainPolicy(other, scopesOf(other), policies, bob).decidedBy, SUB);
  assert.equal(explainPolicy(VM, scopesOf(VM), policies, bob).callerIsRequester, false);
  const none = explainPolicy(VM, scopesOf(VM), [], alice);
  assert.equal(none.decidedBy, undefined);
  assert.equal(none.policy, undefined);
});
