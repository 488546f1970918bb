import { odata } from '@azure/data-tables';
import type { TableClient } from '@azure/data-tables';
import { ConcurrencyConflict, InvalidRequest } from '../domain/errors';
import type {
  PendingAudit,
  RequestListOptions,
  RequestPage,
  RequestRepository,
  StoredRequest,
} from '../domain/ports';
import { isFinal } from '../domain/types';
import { requesterKey } from '../domain/types';
import type { AccessRequest, Protocol, RequestStatus } from '../domain/types';
import { deleteEntityIfExists, getEntityOrUndefined, restStatus } from './tableStorage';

/**
 * `JitRequests`. One row per request (PartitionKey = request id, RowKey = `request`), with columns a person
 * can read in Storage Explorer, plus index rows:
 * - PartitionKey `open`, RowKey = request id: every request not yet final, for the reconciler.
 * - PartitionKey `by-requester|<requester key>` (`requesterId`, or `requester` for rows older than it), RowKey = `<inverted creation time>_<request id>`: a requester's
 *   requests, newest first, as one single-partition range query. Columns `requestId`, `vm` (lower-cased, for
 *   the VM filter), `createdAt`, `final`, and `status` once final. A final status never changes, so the index can
 *   answer "final and X" itself; anything not final is read from the request row, the only source of truth.
 */
const ROW = 'request';
const OPEN = 'open';
const BY_REQUESTER = 'by-requester|';
/** Inverted milliseconds since the epoch keep 13 digits until the year 2286. */
const INVERTED_BASE = 9_999_999_999_999;
/** Index rows examined per page at most, so that a selective filter cannot turn one call into a long scan. */
const MAX_SCANNED_PER_PAGE = 200;
const CURSOR = /^\d{13}_[0-9A-Za-z]{1,64}$/;

/**
 * PartitionKey of a requester's index. Keys may not hold `/ \ # ?` or control characters, and guest UPNs carry
 * `#EXT#`: those (and `%` itself) are percent-encoded, the rest stays readable in Storage Explorer.
 */
const requesterPartition = (requester: string): string =>
  BY_REQUESTER +
  requester.toLowerCase().replace(
    // eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
    /[%/\\#?\u0000-\u001f\u007f-\u009f]/g,
    (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`,
  );

/** RowKey of a request in its requester's index: newest sorts first. */
const requesterRowKey = (r: Pick<AccessRequest, 'id' | 'createdAt'>): string =>
  `${String(INVERTED_BASE - Date.parse(r.createdAt)).padStart(13, '0')}_${r.id}`;

interface RequesterIndexEntity {
  partitionKey: string;
  rowKey: string;
  requestId: string;
  vm: string;
  createdAt: string;
  final: boolean;
  status?: string;
}

interface RequestEntity {
  partitionKey: string;
  rowKey: string;
  requester: string;
  requesterId?: string;
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
  approvalDeadlineSequenceNumber?: string;
  approversNotifiedAt?: string;
  startAt?: string;
  startSequenceNumber?: string;
  revokedBy?: string;
  /** A state change's audit event not yet in the trail (JSON of `PendingAudit`). */
  pendingAudit?: string;
}

function toEntity(r: AccessRequest, pendingAudit?: PendingAudit): RequestEntity {
  return {
    partitionKey: r.id,
    rowKey: ROW,
    requester: r.requester,
    requesterId: r.requesterId,
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
    approvalDeadlineSequenceNumber: r.approvalDeadlineSequenceNumber,
    approversNotifiedAt: r.approversNotifiedAt,
    startAt: r.startAt,
    startSequenceNumber: r.startSequenceNumber,
    revokedBy: r.revokedBy,
    pendingAudit: pendingAudit && JSON.stringify(pendingAudit),
  };
}

function fromEntity(e: RequestEntity): AccessRequest {
  return {
    id: e.partitionKey,
    requester: e.requester,
    requesterId: e.requesterId ?? undefined,
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
    approvalDeadlineSequenceNumber: e.approvalDeadlineSequenceNumber ?? undefined,
    approversNotifiedAt: e.approversNotifiedAt ?? undefined,
    startAt: e.startAt ?? undefined,
    startSequenceNumber: e.startSequenceNumber ?? undefined,
    revokedBy: e.revokedBy ?? undefined,
  };
}

/** Table entities drop undefined columns; a column that became undefined must be removed, so Replace is used. */
function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export class RequestTable implements RequestRepository {
  constructor(private readonly client: TableClient) {}

  async create(request: AccessRequest, pendingAudit?: PendingAudit): Promise<string> {
    // The index rows go first: a crash between them and the request leaves index rows that point nowhere (the
    // reconciler drops the open one, lists skip the other), never a live request the reconciler cannot see.
    await this.client.upsertEntity(
      { partitionKey: OPEN, rowKey: request.id, createdAt: request.createdAt },
      'Replace',
    );
    const index: RequesterIndexEntity = {
      partitionKey: requesterPartition(requesterKey(request)),
      rowKey: requesterRowKey(request),
      requestId: request.id,
      vm: request.vmId.toLowerCase(),
      createdAt: request.createdAt,
      final: isFinal(request.status),
    };
    await this.client.upsertEntity(index, 'Replace');
    const res = await this.client.createEntity(withoutUndefined(toEntity(request, pendingAudit)));
    return res.etag ?? '';
  }

  async get(id: string): Promise<StoredRequest | undefined> {
    if (!/^[0-9A-Za-z]{1,64}$/.test(id)) return undefined;
    const e = await getEntityOrUndefined<RequestEntity>(this.client, id, ROW);
    if (!e) return undefined;
    const stored: StoredRequest = { value: fromEntity(e), etag: e.etag };
    if (e.pendingAudit) stored.pendingAudit = JSON.parse(e.pendingAudit) as PendingAudit;
    return stored;
  }

  async update(request: AccessRequest, etag: string, pendingAudit?: PendingAudit): Promise<string> {
    let res;
    try {
      res = await this.client.updateEntity(withoutUndefined(toEntity(request, pendingAudit)), 'Replace', {
        etag,
      });
    } catch (err) {
      if (restStatus(err) === 412)
        throw new ConcurrencyConflict(`request ${request.id} changed concurrently`);
      throw err;
    }
    if (isFinal(request.status)) {
      // With its event still pending it stays on the reconciler's list: clearing the event removes it.
      if (!pendingAudit) await deleteEntityIfExists(this.client, OPEN, request.id);
      await this.markFinalInIndex(request);
    }
    return res.etag ?? '';
  }

  /** Records a final status in the requester's index (best kept: a list reads the request row when in doubt). */
  private async markFinalInIndex(request: AccessRequest): Promise<void> {
    try {
      await this.client.updateEntity(
        {
          partitionKey: requesterPartition(requesterKey(request)),
          rowKey: requesterRowKey(request),
          final: true,
          status: request.status,
        },
        'Merge',
      );
    } catch (err) {
      // A request written before the index existed has no index row; there is nothing to mark.
      if (restStatus(err) !== 404) throw err;
    }
  }

  async listByRequester(requester: string, options: RequestListOptions): Promise<RequestPage> {
    const after = options.continuationToken ? decodeCursor(options.continuationToken) : undefined;
    const clauses = [odata`PartitionKey eq ${requesterPartition(requester)}`];
    if (after) clauses.push(odata`RowKey gt ${after}`);
    if (options.vmId) clauses.push(odata`vm eq ${options.vmId.toLowerCase()}`);
    if (options.status) {
      // Rows already final with another status cannot match; the rest is decided by the request row.
      clauses.push(
        isFinal(options.status) ? odata`(final eq false or status eq ${options.status})` : 'final eq false',
      );
    }
    const query = this.client.listEntities<RequesterIndexEntity>({
      queryOptions: { filter: clauses.join(' and '), select: ['RowKey', 'requestId'] },
    });
    // Pulled one row at a time, so that the page can stop early and still tell whether more follow.
    const rows = query[Symbol.asyncIterator]();

    const items: AccessRequest[] = [];
    let scanned = 0;
    let last: string | undefined;
    let next = await rows.next();
    while (!next.done && items.length < options.limit && scanned < MAX_SCANNED_PER_PAGE) {
      // Read as many candidates at once as the page still needs; they stay in index (newest first) order.
      const batch: RequesterIndexEntity[] = [];
      while (!next.done && batch.length < options.limit - items.length && scanned < MAX_SCANNED_PER_PAGE) {
        batch.push(next.value);
        scanned++;
        next = await rows.next();
      }
      const found = await Promise.all(batch.map((row) => this.get(row.requestId)));
      for (const f of found) {
        // A row whose request was never written (a crash in create) is skipped.
        if (f && (!options.status || f.value.status === options.status)) items.push(f.value);
      }
      last = batch[batch.length - 1]?.rowKey;
    }
    return next.done || !last ? { items } : { items, continuationToken: encodeCursor(last) };
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

/** Continuation tokens are opaque to callers: the RowKey to continue after, base64url-encoded. */
function encodeCursor(rowKey: string): string {
  return Buffer.from(rowKey, 'utf8').toString('base64url');
}

function decodeCursor(token: string): string {
  const rowKey = Buffer.from(token, 'base64url').toString('utf8');
  if (!CURSOR.test(rowKey)) {
    throw new InvalidRequest([
      { field: 'continuationToken', reason: 'is not a token this API issued; start from the first page' },
    ]);
  }
  return rowKey;
}
