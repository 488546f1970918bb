import type { TableClient } from '@azure/data-tables';
import type { PolicyRepository } from '../domain/ports';
import type { Policy } from '../domain/types';
import { getEntityOrUndefined } from './tableStorage';

/**
 * `JitPolicies`: PartitionKey `policy`, RowKey = the scope, URL-encoded (RowKeys may not hold `/`), and a
 * readable `scope` column. The document itself is the `document` column (JSON), so a policy is one point read.
 */
const PARTITION = 'policy';

interface PolicyEntity {
  partitionKey: string;
  rowKey: string;
  scope: string;
  ports: string;
  approvalMode: string;
  document: string;
}

export const policyRowKey = (scope: string) => encodeURIComponent(scope.toLowerCase());

export class PolicyTable implements PolicyRepository {
  constructor(private readonly client: TableClient) {}

  async getForScopes(scopes: string[]): Promise<Policy[]> {
    const found = await Promise.all(
      scopes.map((s) => getEntityOrUndefined<PolicyEntity>(this.client, PARTITION, policyRowKey(s))),
    );
    return found.filter((e) => e !== undefined).map((e) => JSON.parse(e.document) as Policy);
  }

  async upsert(policy: Policy): Promise<void> {
    const entity: PolicyEntity = {
      partitionKey: PARTITION,
      rowKey: policyRowKey(policy.scope),
      scope: policy.scope,
      ports: policy.ports.map((p) => `${p.port}/${p.protocol}`).join(','),
      approvalMode: policy.approval.mode,
      document: JSON.stringify(policy),
    };
    await this.client.upsertEntity(entity, 'Replace');
  }

  async *list(): AsyncIterable<Policy> {
    const rows = this.client.listEntities<PolicyEntity>({
      queryOptions: { filter: `PartitionKey eq '${PARTITION}'` },
    });
    for await (const row of rows) yield JSON.parse(row.document) as Policy;
  }
}
