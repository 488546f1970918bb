import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffPolicies, isEmptyDiff } from '../../../shared/domain/policyDiff';
import { parsePolicyDocument } from '../../../shared/domain/policyDocument';

const SUB = '/subscriptions/00000000-0000-0000-0000-000000000001';
const parse = (text: string) => parsePolicyDocument(text, { source: 'p.yaml', maxDurationInSeconds: 86400 });
const policy = (rg: string, extra = '') =>
  `  - { scope: ${SUB}/resourceGroups/${rg}, ports: [{ port: 22, maxDuration: PT1H }], allowedSourcePrefixes: [my-ip], requesters: ['*']${extra} }`;
const doc = (...policies: string[]) => ['policies:', ...policies].join('\n');

test('the same set twice is no change', () => {
  const set = parse(doc(policy('a'), policy('b')));
  const diff = diffPolicies(set, parse(doc(policy('b'), policy('a'))));
  assert.ok(isEmptyDiff(diff));
  assert.equal(diff.unchanged, 2);
});

test('added, changed (with the fields that changed) and removed policies, in document form', () => {
  const before = parse(doc(policy('a'), policy('b', ', enforce: true'), policy('c')));
  const after = parse(
    doc(
      policy('a'),
      policy('b', ', approval: { mode: manual, approvers: [user:x@y] }').replace('PT1H', 'PT2H'),
      policy('d'),
    ),
  );
  const diff = diffPolicies(before, after);
  assert.deepEqual(
    diff.added.map((e) => e.scope),
    [`${SUB}/resourcegroups/d`],
  );
  assert.deepEqual(
    diff.removed.map((e) => e.scope),
    [`${SUB}/resourcegroups/c`],
  );
  assert.equal(diff.unchanged, 1);
  assert.equal(diff.changed.length, 1);
  assert.deepEqual(diff.changed[0]?.fields, [
    {
      field: 'ports',
      before: [{ port: 22, protocol: 'Tcp', maxDuration: 'PT1H' }],
      after: [{ port: 22, protocol: 'Tcp', maxDuration: 'PT2H' }],
    },
    { field: 'approval.mode', before: 'auto', after: 'manual' },
    { field: 'approval.approvers', before: undefined, after: ['user:x@y'] },
    { field: 'approval.required', before: undefined, after: 1 },
    { field: 'approval.timeout', before: undefined, after: 'PT30M' },
    { field: 'enforce', before: true, after: false },
  ]);
  assert.equal(diff.changed[0]?.before.ports[0]?.maxDuration, 'PT1H');
});
