import type { TableClient } from '@azure/data-tables';
import { ConcurrencyConflict } from '../domain/errors';
import type { RequestRepository, Versioned } from '../domain/ports';
import { isFinal } from '../domain/types';
import type { AccessRequest, Protocol, RequestStatus } from '../domain/types';
import { deleteEntityIfExists, getEntityOrUndefined, restStatus } from './tableStorage';

/**
 * `JitRequests`. One row per request (PartitionKey = request id, RowKey = `request`), with columns a person
 * can read in Storage Explorer, plus index rows:
 * - PartitionKey `open`, RowKey = request id: every request not yet final, for the reconciler.
 */
const ROW = 'request';
const OPEN = 'open';

interface RequestEntity {
  partitionKey: string;
  rowKey: string;
  requester: string;
  vm: string;
  ports: string;
  protocol: string;
  sourcePrefix: string;
  durationInSeconds: number;
  justification?: string;
  status: string;
  statusReason?: string;
  policyScope: string;
  approvalMode: string;
  createdAt: string;
  updatedAt: string;
  approvedAt?: string;
  activatedAt?: string;
  expiresAt?: string;
  endedAt?: string;
  expirySequenceNumber?: string;
  approvalDeadline?: string;
  approversNotifiedAt?: string;
}

function toEntity(r: AccessRequest): RequestEntity {
  return {
    partitionKey: r.id,
    rowKey: ROW,
    requester: r.requester,
    vm: r.vmId,
    ports: r.ports.join(','),
    protocol: r.protocol,
    sourcePrefix: r.sourcePrefix,
    durationInSeconds: r.durationInSeconds,
    justification: r.justification,
    status: r.status,
    statusReason: r.statusReason,
    policyScope: r.policyScope,
    approvalMode: r.approvalMode,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    approvedAt: r.approvedAt,
    activatedAt: r.activatedAt,
    expiresAt: r.expiresAt,
    endedAt: r.endedAt,
    expirySequenceNumber: r.expirySequenceNumber,
    approvalDeadline: r.approvalDeadline,
    approversNotifiedAt: r.approversNotifiedAt,
  };
}

function fromEntity(e: RequestEntity): AccessRequest {
  return {
    id: e.partitionKey,
    requester: e.requester,
    vmId: e.vm,
    ports: e.ports.split(',').map(Number),
    protocol: e.protocol as Protocol,
    sourcePrefix: e.sourcePrefix,
    durationInSeconds: e.durationInSeconds,
    justification: e.justification ?? undefined,
    status: e.status as RequestStatus,
    statusReason: e.statusReason ?? undefined,
    policyScope: e.policyScope,
    approvalMode: e.approvalMode as AccessRequest['approvalMode'],
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
    approvedAt: e.approvedAt ?? undefined,
    activatedAt: e.activatedAt ?? undefined,
    expiresAt: e.expiresAt ?? undefined,
    endedAt: e.endedAt ?? undefined,
    expirySequenceNumber: e.expirySequenceNumber ?? undefined,
    approvalDeadline: e.approvalDeadline ?? undefined,
    approversNotifiedAt: e.approversNotifiedAt ?? undefined,
  };
}

/** Table entities drop undefined columns; a column that became undefined must be removed, so Replace is used. */
function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export class RequestTable implements RequestRepository {
  constructor(private readonly client: TableClient) {}

  async create(request: AccessRequest): Promise<string> {
    // The index row goes first: a crash between the two leaves an index row the reconciler can drop,
    // never a live request the reconciler cannot see.
    await this.client.upsertEntity(
      { partitionKey: OPEN, rowKey: request.id, createdAt: request.createdAt },
      'Replace',
    );
    const res = await this.client.createEntity(withoutUndefined(toEntity(request)));
    return res.etag ?? '';
  }

  async get(id: string): Promise<Versioned<AccessRequest> | undefined> {
    if (!/^[0-9A-Za-z]{1,64}$/.test(id)) return undefined;
    const e = await getEntityOrUndefined<RequestEntity>(this.client, id, ROW);
    return e ? { value: fromEntity(e), etag: e.etag } : undefined;
  }

  async update(request: AccessRequest, etag: string): Promise<string> {
    let res;
    try {
      res = await this.client.updateEntity(withoutUndefined(toEntity(request)), 'Replace', { etag });
    } catch (err) {
      if (restStatus(err) === 412)
        throw new ConcurrencyConflict(`request ${request.id} changed concurrently`);
      throw err;
    }
    if (isFinal(request.status)) await deleteEntityIfExists(this.client, OPEN, request.id);
    return res.etag ?? '';
  }

  async *listOpen(): AsyncIterable<string> {
    const rows = this.client.listEntities<{ rowKey: string }>({
      queryOptions: { filter: `PartitionKey eq '${OPEN}'`, select: ['RowKey'] },
    });
    for await (const row of rows) yield row.rowKey;
  }

  /** Drops a stale index row (its request is final or never got written). */
  async forgetOpen(id: string): Promise<void> {
    await deleteEntityIfExists(this.client, OPEN, id);
  }
}
