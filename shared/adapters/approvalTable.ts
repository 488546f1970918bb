import { odata } from '@azure/data-tables';
import type { TableClient } from '@azure/data-tables';
import type { ApprovalDecision, Decision } from '../domain/approval';
import { AlreadyDecided } from '../domain/errors';
import type { ApprovalRepository } from '../domain/ports';
import { getEntityOrUndefined, restStatus } from './tableStorage';

/**
 * `JitApprovals`: PartitionKey = request id, RowKey = the approver (URL-encoded, as RowKeys may not hold `/`
 * or `#`), with readable columns. A row is created, never replaced: the insert fails when the approver decided
 * already, which is what makes a link single-use and lets the approval count be derived from rows alone.
 */
interface ApprovalEntity {
  partitionKey: string;
  rowKey: string;
  requestId: string;
  approver: string;
  approverName?: string;
  via: string;
  decision: string;
  comment?: string;
  decidedAt: string;
  clientAddress?: string;
  tokenId: string;
}

const rowKey = (approver: string) => encodeURIComponent(approver.toLowerCase());

function fromEntity(e: ApprovalEntity): ApprovalDecision {
  return {
    requestId: e.requestId,
    approver: e.approver,
    approverName: e.approverName ?? undefined,
    via: e.via,
    decision: e.decision as Decision,
    comment: e.comment ?? undefined,
    decidedAt: e.decidedAt,
    clientAddress: e.clientAddress ?? undefined,
    tokenId: e.tokenId,
  };
}

export class ApprovalTable implements ApprovalRepository {
  constructor(private readonly client: TableClient) {}

  async record(d: ApprovalDecision): Promise<void> {
    const entity: ApprovalEntity = {
      partitionKey: d.requestId,
      rowKey: rowKey(d.approver),
      requestId: d.requestId,
      approver: d.approver.toLowerCase(),
      approverName: d.approverName,
      via: d.via,
      decision: d.decision,
      comment: d.comment,
      decidedAt: d.decidedAt,
      clientAddress: d.clientAddress,
      tokenId: d.tokenId,
    };
    try {
      await this.client.createEntity(
        Object.fromEntries(Object.entries(entity).filter(([, v]) => v !== undefined)) as ApprovalEntity,
      );
    } catch (err) {
      if (restStatus(err) === 409)
        throw new AlreadyDecided('you have already decided on this request; a link is good for one decision');
      throw err;
    }
  }

  async get(requestId: string, approver: string): Promise<ApprovalDecision | undefined> {
    const e = await getEntityOrUndefined<ApprovalEntity>(this.client, requestId, rowKey(approver));
    return e ? fromEntity(e) : undefined;
  }

  async list(requestId: string): Promise<ApprovalDecision[]> {
    const out: ApprovalDecision[] = [];
    const rows = this.client.listEntities<ApprovalEntity>({
      queryOptions: { filter: odata`PartitionKey eq ${requestId}` },
    });
    for await (const row of rows) out.push(fromEntity(row));
    return out.sort((a, b) => a.decidedAt.localeCompare(b.decidedAt));
  }
}
