import { createHash } from 'node:crypto';
import { odata } from '@azure/data-tables';
import type { TableClient } from '@azure/data-tables';
import type { GrantRepository } from '../domain/ports';
import type { GrantRule } from '../domain/types';

/**
 * `JitGrants`: one row per NSG rule written. PartitionKey = request id (a grant's rules are one range read),
 * RowKey = a hash of the NSG id (RowKeys may not hold `/`), columns `nsg`, `rule`, `priority`, `state`, ...
 */
interface GrantEntity {
  partitionKey: string;
  rowKey: string;
  nsg: string;
  rule: string;
  priority: number;
  destinations: string;
  state: string;
  expiresAt: string;
  updatedAt: string;
}

export const grantRowKey = (nsgId: string) =>
  createHash('sha256').update(nsgId.toLowerCase()).digest('hex').slice(0, 32);

export class GrantTable implements GrantRepository {
  constructor(private readonly client: TableClient) {}

  async upsert(rule: GrantRule): Promise<void> {
    const entity: GrantEntity = {
      partitionKey: rule.requestId,
      rowKey: grantRowKey(rule.nsgId),
      nsg: rule.nsgId,
      rule: rule.ruleName,
      priority: rule.priority,
      destinations: rule.destinationAddresses.join(','),
      state: rule.state,
      expiresAt: rule.expiresAt,
      updatedAt: rule.updatedAt,
    };
    await this.client.upsertEntity(entity, 'Replace');
  }

  async list(requestId: string): Promise<GrantRule[]> {
    const rows = this.client.listEntities<GrantEntity>({
      queryOptions: { filter: odata`PartitionKey eq ${requestId}` },
    });
    const out: GrantRule[] = [];
    for await (const e of rows) {
      out.push({
        requestId: e.partitionKey,
        nsgId: e.nsg,
        ruleName: e.rule,
        priority: e.priority,
        destinationAddresses: e.destinations ? e.destinations.split(',') : [],
        state: e.state as GrantRule['state'],
        expiresAt: e.expiresAt,
        updatedAt: e.updatedAt,
      });
    }
    return out;
  }
}
