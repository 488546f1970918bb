import { createHash } from 'node:crypto';
import { odata } from '@azure/data-tables';
import type { TableClient } from '@azure/data-tables';
import type { GrantRepository } from '../domain/ports';
import type { GrantRule } from '../domain/types';
import { deleteEntityIfExists, getEntityOrUndefined } from './tableStorage';

/**
 * `JitGrants`: one row per NSG rule written. PartitionKey = request id (a grant's rules are one range read),
 * RowKey = a hash of the NSG id (RowKeys may not hold `/`), columns `nsg`, `rule`, `priority`, `state`, ...
 * Plus index rows: PartitionKey `live`, RowKey = request id, for every grant that may still have a rule in an
 * NSG (request ids are 26-character ULIDs, so they never collide with `live`).
 */
const LIVE = 'live';
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
  effective?: boolean;
  shadowedBy?: string;
  closeBlocked?: string;
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
    if (rule.effective !== undefined) entity.effective = rule.effective;
    if (rule.shadowedBy !== undefined) entity.shadowedBy = rule.shadowedBy;
    if (rule.closeBlocked !== undefined) entity.closeBlocked = rule.closeBlocked;
    await this.client.upsertEntity(entity, 'Replace');
  }

  async list(requestId: string): Promise<GrantRule[]> {
    const rows = this.client.listEntities<GrantEntity>({
      queryOptions: { filter: odata`PartitionKey eq ${requestId}` },
    });
    const out: GrantRule[] = [];
    for await (const e of rows) out.push(fromEntity(e));
    return out;
  }

  async get(requestId: string, nsgId: string): Promise<GrantRule | undefined> {
    if (!/^[0-9A-Za-z]{1,64}$/.test(requestId)) return undefined;
    const e = await getEntityOrUndefined<GrantEntity>(this.client, requestId, grantRowKey(nsgId));
    return e && fromEntity(e);
  }

  async markLive(requestId: string): Promise<void> {
    await this.client.upsertEntity({ partitionKey: LIVE, rowKey: requestId }, 'Replace');
  }

  async clearLive(requestId: string): Promise<void> {
    await deleteEntityIfExists(this.client, LIVE, requestId);
  }

  async *listLive(): AsyncIterable<string> {
    const rows = this.client.listEntities<{ rowKey: string }>({
      queryOptions: { filter: `PartitionKey eq '${LIVE}'`, select: ['RowKey'] },
    });
    for await (const row of rows) yield row.rowKey;
  }
}

function fromEntity(e: GrantEntity): GrantRule {
  const optional: Partial<GrantRule> = {};
  if (typeof e.effective === 'boolean') optional.effective = e.effective;
  if (e.shadowedBy) optional.shadowedBy = e.shadowedBy;
  if (e.closeBlocked) optional.closeBlocked = e.closeBlocked;
  return {
    ...optional,
    requestId: e.partitionKey,
    nsgId: e.nsg,
    ruleName: e.rule,
    priority: e.priority,
    destinationAddresses: e.destinations ? e.destinations.split(',') : [],
    state: e.state as GrantRule['state'],
    expiresAt: e.expiresAt,
    updatedAt: e.updatedAt,
  };
}
