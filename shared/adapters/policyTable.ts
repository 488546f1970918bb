import type { TableClient, TransactionAction } from '@azure/data-tables';
import { ConcurrencyConflict } from '../domain/errors';
import type { PolicyRepository, PolicySet, PolicyWrite } from '../domain/ports';
import type { Policy } from '../domain/types';
import { getEntityOrUndefined, restStatus } from './tableStorage';

/**
 * `JitPolicies`: PartitionKey `policy`, RowKey = the scope, URL-encoded (RowKeys may not hold `/`), and readable
 * `scope`, `ports`, `approvalMode` and `enforce` columns. The policy itself is the `document` column (JSON), so a
 * policy is one point read.
 *
 * One more row in the partition, RowKey `policy-set`, is the version of the whole set: every change rewrites it
 * in the same transaction, conditional on the ETag read with the set, so two administrators applying documents
 * at once cannot interleave (a Table transaction cannot make a delete conditional, but it can make this row so).
 */
const PARTITION = 'policy';
const SET_ROW = 'policy-set';
/** A Table transaction holds at most 100 operations; one of them is the version row. */
const CHANGES_PER_TRANSACTION = 99;

// Type aliases, not interfaces: the transaction API wants entities assignable to Record<string, unknown>.
type PolicyEntity = {
  partitionKey: string;
  rowKey: string;
  scope: string;
  ports: string;
  approvalMode: string;
  enforce: boolean;
  document: string;
};

type SetEntity = {
  partitionKey: string;
  rowKey: string;
  note: string;
};

const policyRowKey = (scope: string) => encodeURIComponent(scope.toLowerCase());

const setRow = (): SetEntity => ({
  partitionKey: PARTITION,
  rowKey: SET_ROW,
  note: 'version of the policy set: rewritten with every change',
});

function toEntity(policy: Policy): PolicyEntity {
  return {
    partitionKey: PARTITION,
    rowKey: policyRowKey(policy.scope),
    scope: policy.scope,
    ports: policy.ports.map((p) => `${p.port}/${p.protocol}`).join(','),
    approvalMode: policy.approval.mode,
    enforce: policy.enforce,
    document: JSON.stringify(policy),
  };
}

export class PolicyTable implements PolicyRepository {
  constructor(private readonly client: TableClient) {}

  async getForScopes(scopes: string[]): Promise<Policy[]> {
    const found = await Promise.all(
      scopes.map((s) => getEntityOrUndefined<PolicyEntity>(this.client, PARTITION, policyRowKey(s))),
    );
    return found.filter((e) => e !== undefined).map((e) => JSON.parse(e.document) as Policy);
  }

  /** Writes one policy regardless of the set's version, and moves the version on so no apply overwrites it blindly. */
  async upsert(policy: Policy): Promise<void> {
    await this.client.submitTransaction([
      ['upsert', toEntity(policy), 'Replace'],
      ['upsert', setRow(), 'Replace'],
    ]);
  }

  async *list(): AsyncIterable<Policy> {
    const rows = this.client.listEntities<PolicyEntity>({
      queryOptions: { filter: `PartitionKey eq '${PARTITION}'` },
    });
    for await (const row of rows) if (row.rowKey !== SET_ROW) yield JSON.parse(row.document) as Policy;
  }

  async getSet(): Promise<PolicySet> {
    const set: PolicySet = { policies: [], version: undefined };
    const rows = this.client.listEntities<PolicyEntity>({
      queryOptions: { filter: `PartitionKey eq '${PARTITION}'` },
    });
    for await (const row of rows) {
      if (row.rowKey === SET_ROW) set.version = row.etag;
      else set.policies.push(JSON.parse(row.document) as Policy);
    }
    return set;
  }

  async applyChanges(changes: PolicyWrite[], version: string | undefined): Promise<void> {
    let etag = version;
    for (let i = 0; i < changes.length; i += CHANGES_PER_TRANSACTION) {
      const actions: TransactionAction[] = changes
        .slice(i, i + CHANGES_PER_TRANSACTION)
        .map((c): TransactionAction =>
          c.kind === 'put'
            ? ['upsert', toEntity(c.policy), 'Replace']
            : ['delete', { partitionKey: PARTITION, rowKey: policyRowKey(c.scope) }],
        );
      actions.push(etag ? ['update', setRow(), 'Replace', { etag }] : ['create', setRow()]);
      try {
        const result = await this.client.submitTransaction(actions);
        etag = result.getResponseForEntity(SET_ROW)?.etag;
      } catch (err) {
        const status = restStatus(err);
        // 412: the version row changed; 409: it was created meanwhile; 404: a row to delete is already gone.
        if (status === 412 || status === 409 || status === 404) {
          throw new ConcurrencyConflict(
            'the policies changed while this change was being applied; try again',
          );
        }
        throw err;
      }
      // Should the service not report the row's new ETag, read it: the next transaction must be conditional on it.
      etag ??= (await getEntityOrUndefined<SetEntity>(this.client, PARTITION, SET_ROW))?.etag;
    }
  }
}
