/**
 * JitPolicies on Azurite through the real @azure/data-tables client: changes of the set are conditional on the
 * version read with it, across transactions of 99, and a stale version writes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TableClient } from '@azure/data-tables';
import { Azurite } from '../../dev/azurite';
import { PolicyTable } from '../../shared/adapters/policyTable';
import { ConcurrencyConflict } from '../../shared/domain/errors';
import type { Policy } from '../../shared/domain/types';
import { SUBSCRIPTION, aPolicy } from '../support/builders';

const policy = (n: number): Policy =>
  aPolicy({ scope: `${SUBSCRIPTION}/resourcegroups/rg-${String(n).padStart(3, '0')}`, enforce: n % 2 === 0 });

describe('PolicyTable on Azurite', () => {
  const azurite = new Azurite({ blobPort: 0, queuePort: 0, tablePort: 0 });
  let table: PolicyTable;
  before(async () => {
    await azurite.start();
    const client = TableClient.fromConnectionString(azurite.connectionString, 'JitPolicies', {
      allowInsecureConnection: true,
    });
    await client.createTable();
    table = new PolicyTable(client);
  });
  after(async () => {
    await azurite.stop();
  });

  test('a change of more than one transaction lands whole, and the version moves on', async () => {
    const empty = await table.getSet();
    assert.deepEqual(empty, { policies: [], version: undefined });
    const all = Array.from({ length: 150 }, (_, i) => policy(i));
    await table.applyChanges(
      all.map((p) => ({ kind: 'put', policy: p })),
      empty.version,
    );
    const set = await table.getSet();
    assert.equal(set.policies.length, 150);
    assert.ok(set.version);
    assert.deepEqual(await table.getForScopes([all[7]!.scope]), [all[7]]);

    // Delete 120 and change one, in two transactions, each conditional on the one before.
    await table.applyChanges(
      [
        { kind: 'put', policy: { ...all[149]!, enforce: true, requesters: ['user:a@b'] } },
        ...all.slice(0, 120).map((p) => ({ kind: 'delete' as const, scope: p.scope })),
      ],
      set.version,
    );
    const after = await table.getSet();
    assert.equal(after.policies.length, 30);
    assert.deepEqual(after.policies.find((p) => p.scope === all[149]!.scope)?.requesters, ['user:a@b']);
    assert.notEqual(after.version, set.version);
  });

  test('a change made against a stale version is refused and writes nothing', async () => {
    const read = await table.getSet();
    await table.upsert(policy(900)); // someone else, meanwhile
    await assert.rejects(
      table.applyChanges(
        [
          { kind: 'put', policy: policy(901) },
          { kind: 'delete', scope: read.policies[0]!.scope },
        ],
        read.version,
      ),
      ConcurrencyConflict,
    );
    const now = await table.getSet();
    assert.equal(now.policies.length, read.policies.length + 1);
    assert.ok(!now.policies.some((p) => p.scope === policy(901).scope));
    await assert.rejects(
      table.applyChanges([{ kind: 'put', policy: policy(902) }], undefined),
      ConcurrencyConflict,
      'a set that has a version cannot be written as if it had none',
    );
  });
});
