import { createHash } from 'node:crypto';
import { odata } from '@azure/data-tables';
import type { TableClient, TransactionAction } from '@azure/data-tables';
import {
  DAYS_PARTITION,
  HEAD_ROW_KEY,
  actorPartition,
  chainEvents,
  dayOf,
  dayRowKey,
  eventColumns,
  headRow,
  indexPartitions,
  isDayPartition,
  requestPartition,
  rowKeyRange,
  storedRow,
  vmPartition,
} from '../domain/auditChain';
import type { AuditRow, ChainAnchor, ChainHead, TimedEvent } from '../domain/auditChain';
import { auditRecordOf } from '../domain/auditQuery';
import type { AuditPage, AuditQuery, AuditRecord } from '../domain/auditQuery';
import { InvalidRequest } from '../domain/errors';
import type { AuditLog, AuditTrail, Clock } from '../domain/ports';
import type { AuditEvent } from '../domain/types';
import { getEntityOrUndefined, restStatus } from './tableStorage';

export interface AuditTableOptions {
  /** Most events in one transaction (at most 99: the head row is the 100th operation). */
  maxBatch?: number;
  /** Attempts at one commit before giving up, for many instances racing for one day. */
  maxAttempts?: number;
}

interface Pending extends TimedEvent {
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface KnownHead {
  head: ChainHead;
  etag: string;
}

/** An entity-group transaction holds at most 4 MiB; stay well below it. */
const MAX_BATCH_BYTES = 2_000_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `JitAudit`: the append-only, hash-chained audit trail (format in shared/domain/auditChain.ts, docs/audit.md).
 *
 * Writing: appends for one day are queued and committed together — up to 99 events and the day's head row in one
 * entity-group transaction, the head updated with the ETag read before. Event rows are only ever created; the head
 * is the one row updated. A writer that loses the race (412, or 409 on a day's first head) reads the head again
 * and re-chains its events on top. Each committed event is then copied, with all its columns, to its index
 * partitions (`vm|…`, `actor|…`, `request|…`), so "everything for this VM" is a single-partition range read.
 */
export class AuditTable implements AuditLog, AuditTrail {
  private readonly queues = new Map<string, Pending[]>();
  /** The head this instance last wrote, per day: saves a read per commit while no one else writes. */
  private readonly heads = new Map<string, KnownHead>();
  private readonly registered = new Set<string>();
  private readonly maxBatch: number;
  private readonly maxAttempts: number;

  constructor(
    private readonly client: TableClient,
    private readonly clock: Clock,
    options: AuditTableOptions = {},
  ) {
    this.maxBatch = Math.min(99, Math.max(1, options.maxBatch ?? 99));
    this.maxAttempts = options.maxAttempts ?? 40;
  }

  // ---- writing ------------------------------------------------------------------------------------------

  /** Resolves once the event is chained and indexed; rejects if it could not be written. */
  append(event: AuditEvent): Promise<void> {
    const at = this.clock.now();
    const day = dayOf(at.getTime());
    eventColumns(event); // a malformed event fails alone, not the batch it would have joined
    return new Promise<void>((resolve, reject) => {
      let queue = this.queues.get(day);
      const idle = !queue;
      if (!queue) this.queues.set(day, (queue = []));
      queue.push({ event, at, resolve, reject });
      if (idle) void this.drain(day, queue);
    });
  }

  /** Commits a day's queue batch by batch; what arrives during a commit joins the next one. */
  private async drain(day: string, queue: Pending[]): Promise<void> {
    while (queue.length) {
      const batch = takeBatch(queue, this.maxBatch);
      try {
        // Only the chain needs to be serial, but overlapping a batch's index writes with the next commit
        // measured no faster (bench/audit.ts): kept simple.
        await this.writeIndexRows(await this.commit(day, batch));
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.queues.delete(day);
  }

  /** Chains the events onto the day and commits them with the head; returns the rows written. */
  private async commit(day: string, events: TimedEvent[]): Promise<AuditRow[]> {
    for (let attempt = 1; ; attempt++) {
      const known = this.heads.get(day) ?? (await this.readHead(day));
      const anchor = known ? undefined : await this.anchorFor(day);
      const { rows, head } = chainEvents(day, known?.head, anchor, events);
      const actions: TransactionAction[] = rows.map((r) => ['create', r]);
      actions.push(
        known
          ? ['update', headRow(day, head), 'Replace', { etag: known.etag }]
          : ['create', headRow(day, head)],
      );
      try {
        if (!known) await this.registerDay(day);
        const res = await this.client.submitTransaction(actions);
        this.remember(day, head, res.subResponses.at(-1)?.etag);
      } catch (err) {
        this.heads.delete(day);
        // The service may have committed a transaction whose answer was lost (and the pipeline's retry then
        // conflicts with our own rows): if the head is now exactly what we wrote, it is ours.
        const now = await this.readHead(day).catch(() => undefined);
        if (now?.head.hash !== head.hash) {
          const status = restStatus(err);
          const contended = status === 412 || status === 409;
          // A RestError without a status is a failed send (connection reset, timeout): worth another try.
          const transient =
            (err as Error)?.name === 'RestError' &&
            (status === undefined || status === 408 || status === 429 || status >= 500);
          if (attempt >= this.maxAttempts || !(contended || transient)) throw err;
          // Jittered, growing pause: writers on other instances racing for the same head spread out.
          await sleep(Math.random() * Math.min(200, 5 * 2 ** Math.min(attempt, 6)));
          continue;
        }
        if (now) this.heads.set(day, now);
      }
      return rows;
    }
  }

  private remember(day: string, head: ChainHead, etag: string | undefined): void {
    if (!etag) return void this.heads.delete(day);
    // Only the current days matter; older ones are written to only around midnight.
    if (this.heads.size > 3) this.heads.clear();
    this.heads.set(day, { head, etag });
  }

  private async readHead(day: string): Promise<KnownHead | undefined> {
    const e = await getEntityOrUndefined<Record<string, unknown>>(this.client, day, HEAD_ROW_KEY);
    if (!e) return undefined;
    return { head: { seq: Number(e.seq), hash: String(e.hash), time: String(e.time) }, etag: e.etag };
  }

  /** The last event of the latest earlier day, for a new day's first event to link to. */
  private async anchorFor(day: string): Promise<ChainAnchor | undefined> {
    const earlier = this.client
      .listEntities<{ day: string }>({
        queryOptions: { filter: odata`PartitionKey eq ${DAYS_PARTITION} and RowKey gt ${dayRowKey(day)}` },
      })
      .byPage({ maxPageSize: 5 });
    const page = await earlier.next();
    // A day listed without a head never got its first commit through: link past it.
    for (const e of page.done ? [] : page.value) {
      const known = await this.readHead(e.day);
      if (known) return { day: e.day, seq: known.head.seq, hash: known.head.hash };
    }
    return undefined;
  }

  /** Lists the day (before its first commit, so a day with events is always listed). */
  private async registerDay(day: string): Promise<void> {
    if (this.registered.has(day)) return;
    try {
      await this.client.createEntity({ partitionKey: DAYS_PARTITION, rowKey: dayRowKey(day), day });
    } catch (err) {
      if (restStatus(err) !== 409) throw err;
    }
    this.registered.add(day);
  }

  private async writeIndexRows(rows: AuditRow[]): Promise<void> {
    const byPartition = new Map<string, AuditRow[]>();
    for (const row of rows) {
      for (const pk of indexPartitions(row)) {
        const list = byPartition.get(pk) ?? [];
        list.push({ ...row, partitionKey: pk });
        byPartition.set(pk, list);
      }
    }
    await Promise.all([...byPartition.values()].map((list) => createAll(this.client, list)));
  }

  // ---- reading ------------------------------------------------------------------------------------------

  async hasEvent(requestId: string, eventId: string, recordedAt: string): Promise<boolean> {
    // Iterated, not one page read: the service may answer a filtered read with an empty page and a continuation.
    const copies = this.client.listEntities({
      queryOptions: {
        filter: odata`PartitionKey eq ${requestPartition(requestId)} and eventId eq ${eventId}`,
        select: ['RowKey'],
      },
    });
    for await (const row of copies) if (row) return true;
    // An append whose chain committed but whose index copies did not (storage went away in between) left the event
    // in its day only: look there — the day it was recorded, or the next if it was appended past midnight — and
    // restore the copies. (A read of one day partition, on this rare path only.)
    const at = Date.parse(recordedAt);
    for (const day of new Set([dayOf(at), dayOf(at + 10 * 60_000)])) {
      const rows = this.client.listEntities<Record<string, unknown>>({
        queryOptions: { filter: odata`PartitionKey eq ${day} and eventId eq ${eventId}` },
      });
      for await (const e of rows) {
        await this.writeIndexRows([storedRow(e)]);
        return true;
      }
    }
    return false;
  }

  async listEvents(
    query: AuditQuery,
    options: { pageSize: number; continuationToken?: string },
  ): Promise<AuditPage> {
    const fingerprint = fingerprintOf(query);
    const cursor = decodeCursor(options.continuationToken, fingerprint);
    const keys = rowKeyRange(query.from?.getTime(), query.to?.getTime());
    const range = odata`RowKey ge ${keys.ge} and RowKey lt ${keys.lt}`;
    const encode = (c: Omit<Cursor, 'q'>) => encodeCursor({ q: fingerprint, ...c });

    // The most selective index partition answers; the other filters are column filters within it.
    const index = query.requestId
      ? {
          pk: requestPartition(query.requestId),
          also: [query.vm && odata`vm eq ${query.vm}`, query.actor && odata`actor eq ${query.actor}`],
        }
      : query.vm
        ? { pk: vmPartition(query.vm), also: [query.actor && odata`actor eq ${query.actor}`] }
        : query.actor
          ? { pk: actorPartition(query.actor), also: [] }
          : undefined;
    if (index) {
      const filter = [odata`PartitionKey eq ${index.pk}`, range, ...index.also.filter(Boolean)].join(' and ');
      const { items, next } = await this.fill(filter, options.pageSize, cursor?.c);
      return { items, continuationToken: next ? encode({ c: next }) : undefined };
    }

    // A time range alone: the day partitions, newest day first.
    const oldest = query.from ? dayOf(query.from.getTime()) : undefined;
    const newest = cursor?.d ?? (query.to ? dayOf(query.to.getTime() - 1) : undefined);
    const items: AuditRecord[] = [];
    for await (const day of this.daysNewestFirst(newest, oldest)) {
      const filter = `${odata`PartitionKey eq ${day}`} and ${range}`;
      const got = await this.fill(
        filter,
        options.pageSize - items.length,
        day === cursor?.d ? cursor.c : undefined,
      );
      items.push(...got.items);
      if (got.next) return { items, continuationToken: encode({ d: day, c: got.next }) };
      if (items.length >= options.pageSize) {
        const before = dayOf(Date.parse(day) - 1);
        return { items, continuationToken: oldest && before < oldest ? undefined : encode({ d: before }) };
      }
    }
    return { items };
  }

  /** Reads up to `want` records of one filtered partition range, following the service's pages. */
  private async fill(
    filter: string,
    want: number,
    token: string | undefined,
  ): Promise<{ items: AuditRecord[]; next?: string }> {
    const items: AuditRecord[] = [];
    let next = token;
    do {
      const pages = this.client
        .listEntities<Record<string, unknown>>({ queryOptions: { filter } })
        .byPage({ maxPageSize: want - items.length, continuationToken: next });
      let page;
      try {
        page = await pages.next();
      } catch (err) {
        if (next && restStatus(err) === 400) throw foreignToken();
        throw err;
      }
      if (page.done) break;
      items.push(...page.value.map((e) => auditRecordOf(e as AuditRow)));
      next = page.value.continuationToken;
    } while (next && items.length < want);
    return { items, next: items.length >= want ? next : undefined };
  }

  private async *daysNewestFirst(newest?: string, oldest?: string): AsyncIterable<string> {
    const bounds = [odata`PartitionKey eq ${DAYS_PARTITION}`];
    if (newest) bounds.push(odata`RowKey ge ${dayRowKey(newest)}`);
    if (oldest) bounds.push(odata`RowKey le ${dayRowKey(oldest)}`);
    const rows = this.client.listEntities<{ day: string }>({
      queryOptions: { filter: bounds.join(' and '), select: ['day'] },
    });
    for await (const e of rows) yield e.day;
  }

  async readDay(day: string): Promise<AuditRow[]> {
    const out: AuditRow[] = [];
    for await (const e of this.client.listEntities({
      queryOptions: { filter: odata`PartitionKey eq ${day}` },
    }))
      out.push(e as AuditRow);
    return out;
  }

  async findEvent(day: string, seq: number): Promise<AuditRow | undefined> {
    const rows = this.client.listEntities({
      queryOptions: { filter: `${odata`PartitionKey eq ${day}`} and seq eq ${Math.trunc(seq)}` },
    });
    for await (const e of rows) return e as AuditRow;
    return undefined;
  }

  async listDays(fromDay: string, toDay: string): Promise<string[]> {
    const out: string[] = [];
    for await (const day of this.daysNewestFirst(toDay, fromDay)) out.push(day);
    return out.reverse();
  }
}

/** Takes the next batch off a queue: at most `max` events and about MAX_BATCH_BYTES of columns. */
function takeBatch(queue: Pending[], max: number): Pending[] {
  let bytes = 0;
  let n = 0;
  while (n < queue.length && n < max) {
    bytes += JSON.stringify(queue[n]!.event).length * 2 + 600;
    if (n > 0 && bytes > MAX_BATCH_BYTES) break;
    n++;
  }
  return queue.splice(0, n);
}

/** Creates rows of one partition, 100 per transaction; rows that already exist (a retried commit) are fine. */
async function createAll(client: TableClient, rows: AuditRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 100) {
    const chunk = rows.slice(i, i + 100);
    try {
      if (chunk.length === 1) await client.createEntity(chunk[0]!);
      else await client.submitTransaction(chunk.map((r): TransactionAction => ['create', r]));
    } catch (err) {
      if (restStatus(err) !== 409) throw err;
      for (const row of chunk) {
        try {
          await client.createEntity(row);
        } catch (e) {
          if (restStatus(e) !== 409) throw e;
        }
      }
    }
  }
}

// ---- continuation tokens ------------------------------------------------------------------------------------

/** Where the next page starts: the query it belongs to, a day (day-range walks) and the service's own token. */
interface Cursor {
  q: string;
  d?: string;
  c?: string;
}

function fingerprintOf(q: AuditQuery): string {
  const parts = [q.from?.toISOString(), q.to?.toISOString(), q.vm, q.actor, q.requestId];
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 16);
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

const foreignToken = () =>
  new InvalidRequest([
    { field: 'continuationToken', reason: 'is not a token this API returned for these parameters' },
  ]);

function decodeCursor(token: string | undefined, fingerprint: string): Cursor | undefined {
  if (!token) return undefined;
  let c: Partial<Cursor>;
  try {
    c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    throw foreignToken();
  }
  // A token from other parameters would silently answer a different question: refuse it.
  if (
    c?.q !== fingerprint ||
    (c.d !== undefined && !isDayPartition(c.d)) ||
    (c.c !== undefined && !isTableServiceToken(c.c))
  )
    throw foreignToken();
  return { q: c.q, d: c.d, c: c.c };
}

/**
 * The Table service's own continuation, as @azure/data-tables writes it: base64 of JSON `{nextPartitionKey,
 * nextRowKey?}` (its utils/continuationToken). A crafted one would otherwise reach the SDK and fail there as a 500.
 */
function isTableServiceToken(token: unknown): boolean {
  if (typeof token !== 'string' || token.length > 2048 || !/^[A-Za-z0-9+/]+={0,2}$/.test(token)) return false;
  try {
    const t = JSON.parse(Buffer.from(token, 'base64').toString('latin1')) as Record<string, unknown>;
    return (
      typeof t === 'object' &&
      t !== null &&
      typeof t.nextPartitionKey === 'string' &&
      t.nextPartitionKey !== '' &&
      (t.nextRowKey === undefined || typeof t.nextRowKey === 'string') &&
      Object.keys(t).every((k) => k === 'nextPartitionKey' || k === 'nextRowKey')
    );
  } catch {
    return false;
  }
}
