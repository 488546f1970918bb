/**
 * The audit trail's storage format and its hash chain (docs/audit.md describes both for a reader of the table).
 *
 * - Day partitions (`yyyy-MM-dd`) hold the events of one UTC day. Each carries `seq` (1, 2, … within the day),
 *   `prevHash` and `hash` = SHA-256 over a canonical serialisation of every column plus its keys, so a changed
 *   column breaks its own hash and a removed or re-ordered row breaks the links.
 * - A `head` row in each day partition records the day's last `seq` and `hash`. It is updated in the same
 *   entity-group transaction as each append, with the ETag read before: two writers can never both extend the
 *   chain from the same event (one gets 412 and tries again), and deleting the day's last event is detectable.
 * - The first event of a day anchors the chain to the latest earlier day (`prevDay`, `prevSeq`, `prevHash`), so a
 *   deleted or truncated earlier day is detectable too.
 * - RowKeys sort newest first (inverted milliseconds, then inverted seq): Table storage only reads forward, and an
 *   auditor's first question is "what happened lately". The readable time is the `time` column.
 *
 * Pure: no I/O and no Azure SDK; node:crypto for the hash.
 */
import { createHash } from 'node:crypto';
import type { AuditEvent } from './types';

/** Hashed into every event, so a future change of format is a new version rather than a broken chain. */
const CHAIN_FORMAT = 'jit-audit/1';
/** RowKey of the per-day head row. Sorts after every event key (digits), so event ranges never include it. */
export const HEAD_ROW_KEY = 'head';
/** Partition listing every day that has events, newest first. */
export const DAYS_PARTITION = 'days';
/** `prevHash` of the very first event of the trail. */
export const GENESIS_HASH = '0'.repeat(64);
/** Longest text kept in one column. Table storage refuses properties over 64 KiB; an audit append must not fail. */
export const MAX_TEXT_LENGTH = 8000;

const MAX_MS = 9_999_999_999_999; // 2286-11-20: keeps the inverted time at 13 digits
const MAX_SEQ = 99_999_999;
const MAX_DAY = 99_999_999;

/** A column value as stored. */
export type ColumnValue = string | number | boolean;

/** A row of `JitAudit` as read or to be written: its keys and its columns. */
export interface AuditRow {
  partitionKey: string;
  rowKey: string;
  [column: string]: unknown;
}

/** What a day's head row records: the day's last event. */
export interface ChainHead {
  seq: number;
  hash: string;
  time: string;
}

/** The event a day's first event links to: the last event of the latest earlier day, when the day began. */
export interface ChainAnchor {
  day: string;
  seq: number;
  hash: string;
}

/** An event to append, and when it happened. */
export interface TimedEvent {
  event: AuditEvent;
  at: Date;
}

/** Columns the chain sets itself; an event may not carry fields of these names. */
const CHAIN_COLUMNS = new Set(['time', 'seq', 'hash', 'prevHash', 'prevDay', 'prevSeq', 'day']);
/** Columns a row holds that its hash does not cover: its keys, and the hash itself. */
const NOT_HASHED = new Set(['partitionKey', 'rowKey', 'hash']);

/** Properties the SDK or the service add to an entity as it is read (ETag, timestamp, OData annotations). */
function isReadMetadata(key: string): boolean {
  return key === 'etag' || key === 'timestamp' || key.startsWith('odata.') || key.includes('@odata');
}

/** A row as stored: an entity as read, without what the SDK or the service added to it. */
export function storedRow(entity: Record<string, unknown>): AuditRow {
  return Object.fromEntries(Object.entries(entity).filter(([k]) => !isReadMetadata(k))) as AuditRow;
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** `yyyy-MM-dd` (UTC) of an ISO time or a millisecond timestamp. */
/** Whether a PartitionKey is a day's (`2026-03-14`), holding that day's chain, rather than an index or the list. */
export function isDayPartition(partitionKey: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(partitionKey);
}

export function dayOf(time: string | number): string {
  return (typeof time === 'number' ? new Date(time).toISOString() : time).slice(0, 10);
}

/** RowKey of an event: newer events sort first; within one millisecond, the later seq first. */
export function eventRowKey(ms: number, seq: number): string {
  return `${pad(MAX_MS - ms, 13)}-${pad(MAX_SEQ - seq, 8)}`;
}

/**
 * RowKey bounds (`ge`, `lt`) selecting the events with `fromMs <= time < toMs` in any partition of events.
 * An open bound still excludes the head row.
 */
export function rowKeyRange(fromMs?: number, toMs?: number): { ge: string; lt: string } {
  return {
    // time < toMs  <=>  MAX_MS - time >= MAX_MS - toMs + 1
    ge: toMs === undefined ? '0' : pad(MAX_MS - toMs + 1, 13),
    // time >= fromMs  <=>  MAX_MS - time < MAX_MS - fromMs + 1; ':' sorts right after '9' and before 'head'
    lt: fromMs === undefined ? ':' : pad(MAX_MS - fromMs + 1, 13),
  };
}

/** RowKey of a day in the `days` partition: newest day first. */
export function dayRowKey(day: string): string {
  return pad(MAX_DAY - Number(day.replaceAll('-', '')), 8);
}

/** Characters a PartitionKey may not hold (and `%`, `|` which the encoding itself uses). */
// eslint-disable-next-line no-control-regex
const KEY_UNSAFE = /[%|\\#?\u0000-\u001f\u007f-\u009f]/g;
const keyPart = (text: string) =>
  text.replace(KEY_UNSAFE, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** Index partition of a VM: `vm|subscriptions|<sub>|resourcegroups|<rg>|…|virtualmachines|<name>`, lower-cased. */
export function vmPartition(vmId: string): string {
  return `vm|${keyPart(vmId.trim().toLowerCase().replace(/^\/+/, '')).replaceAll('/', '|')}`;
}

/** Index partition of an actor: `actor|alice@example.com`, `actor|system:grant`. */
export function actorPartition(actor: string): string {
  return `actor|${keyPart(actor.trim().toLowerCase()).replaceAll('/', '%2f')}`;
}

/** Index partition of a request: `request|<request id>`. */
export function requestPartition(requestId: string): string {
  return `request|${keyPart(requestId.trim()).replaceAll('/', '%2f')}`;
}

const clip = (text: string) =>
  text.length <= MAX_TEXT_LENGTH
    ? text
    : `${text.slice(0, MAX_TEXT_LENGTH)}…[${text.length - MAX_TEXT_LENGTH} more characters not kept]`;

function columnValue(value: unknown): ColumnValue {
  if (Array.isArray(value)) return clip(value.map(String).join(','));
  if (typeof value === 'string') return clip(value);
  if (typeof value === 'boolean') return value;
  // Table storage reads an unannotated integer as Int32: keep larger ones exact as text.
  if (typeof value === 'number')
    return Number.isInteger(value) && Math.abs(value) > 2 ** 31 - 1 ? String(value) : value;
  return clip(JSON.stringify(value));
}

/**
 * The columns of an event: every defined field under its own name (arrays comma-joined). `vm` and `actor` are
 * lower-cased — ARM ids and sign-in names are case-insensitive — so that `vm eq '…'` filters match every row.
 */
export function eventColumns(event: AuditEvent): Record<string, ColumnValue> {
  const out: Record<string, ColumnValue> = {};
  for (const [name, value] of Object.entries(event)) {
    if (value === undefined || value === null) continue;
    if (CHAIN_COLUMNS.has(name)) throw new RangeError(`audit event field "${name}" is a chain column`);
    out[name] = columnValue(value);
  }
  if (typeof out.vm === 'string') out.vm = out.vm.trim().toLowerCase();
  if (typeof out.actor === 'string') out.actor = out.actor.trim().toLowerCase();
  return out;
}

function canonicalValue(value: unknown): unknown {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return value;
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/**
 * The bytes an event's hash covers: the format tag, its day, its RowKey and every column but `hash`, sorted by
 * name, as JSON. Every column counts, including ones added later or by hand, so nothing can be slipped in.
 * `partitionKey` is given for index rows, whose own PartitionKey is not the day.
 */
function canonicalOf(row: AuditRow, day = row.partitionKey): string {
  const columns = Object.keys(row)
    .filter((k) => !NOT_HASHED.has(k) && !isReadMetadata(k))
    .sort()
    .map((k) => [k, canonicalValue(row[k])]);
  return JSON.stringify([CHAIN_FORMAT, day, row.rowKey, columns]);
}

export function hashOf(row: AuditRow, day?: string): string {
  return createHash('sha256').update(canonicalOf(row, day), 'utf8').digest('hex');
}

/**
 * Chains events onto a day: numbers them after `previous` (the head read before writing), links each to the one
 * before, and returns the rows and the new head. A time earlier than the previous event's (clock skew between
 * instances) is raised to it, so that RowKey order, time order and chain order are one order.
 */
export function chainEvents(
  day: string,
  previous: ChainHead | undefined,
  anchor: ChainAnchor | undefined,
  events: TimedEvent[],
): { rows: AuditRow[]; head: ChainHead } {
  let seq = previous?.seq ?? 0;
  let prevHash = previous?.hash ?? anchor?.hash ?? GENESIS_HASH;
  let lastMs = previous ? Date.parse(previous.time) : Number.NEGATIVE_INFINITY;
  const rows = events.map(({ event, at }) => {
    const ms = Math.max(at.getTime(), lastMs);
    if (dayOf(ms) !== day) throw new RangeError(`an event at ${new Date(ms).toISOString()} is not on ${day}`);
    seq += 1;
    const row: AuditRow = {
      partitionKey: day,
      rowKey: eventRowKey(ms, seq),
      ...eventColumns(event),
      time: new Date(ms).toISOString(),
      seq,
      prevHash,
    };
    if (seq === 1 && anchor) {
      row.prevDay = anchor.day;
      row.prevSeq = anchor.seq;
    }
    row.hash = hashOf(row);
    prevHash = row.hash as string;
    lastMs = ms;
    return row;
  });
  return { rows, head: { seq, hash: prevHash, time: new Date(lastMs).toISOString() } };
}

/** The head row of a day. */
export function headRow(day: string, head: ChainHead): AuditRow {
  return { partitionKey: day, rowKey: HEAD_ROW_KEY, seq: head.seq, hash: head.hash, time: head.time };
}

/** The index partitions an event row is copied to (full columns, same RowKey: no join needed). */
export function indexPartitions(row: AuditRow): string[] {
  const out: string[] = [];
  if (typeof row.vm === 'string' && row.vm) out.push(vmPartition(row.vm));
  if (typeof row.actor === 'string' && row.actor) out.push(actorPartition(row.actor));
  if (typeof row.requestId === 'string' && row.requestId) out.push(requestPartition(row.requestId));
  return out;
}

// ---- verification ----------------------------------------------------------------------------------------

type ChainProblemKind =
  | 'edited' // a row's columns no longer match its own hash
  | 'missing' // a seq is absent: the row was deleted
  | 'broken-link' // a row's prevHash is not the previous row's hash: a row was replaced or re-chained
  | 'duplicate' // two rows claim one seq
  | 'malformed' // a row in a day partition that is not an event
  | 'head-missing' // events without the day's head row
  | 'head-mismatch' // the head names a different last event
  | 'unrecorded' // events beyond what the head records: written around the chain writer
  | 'anchor-missing' // the earlier event a day's first event links to is gone
  | 'anchor-mismatch' // …or has a different hash
  | 'unregistered' // a day with events that the `days` list does not name (hidden from day-range queries)
  | 'anchor-differs' // the day no longer matches the anchor written outside the table (auditAnchor.ts)
  | 'anchored-day-missing'; // a day was anchored, but the table has no events for it

/** One thing verification found wrong, at the place it found it. */
export interface ChainProblem {
  day: string;
  seq?: number;
  rowKey?: string;
  kind: ChainProblemKind;
  message: string;
}

/** What one day partition holds, as verification found it. */
export interface DayCheck {
  day: string;
  /** Event rows present. */
  events: number;
  head?: ChainHead;
  /** What the day's first event links to, when it links to an earlier day. */
  anchor?: ChainAnchor;
  /** Stored hash of each event present, by seq (to check the anchors of later days). */
  hashes: Map<number, string>;
  problems: ChainProblem[];
}

const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** Checks one day partition's rows: every hash, every link, no gaps, and the head. */
export function verifyDay(day: string, rows: AuditRow[]): DayCheck {
  const problems: ChainProblem[] = [];
  const headRowFound = rows.find((r) => r.rowKey === HEAD_ROW_KEY);
  const events = new Map<number, AuditRow>();
  for (const row of rows) {
    if (row.rowKey === HEAD_ROW_KEY) continue;
    if (!isSeq(row.seq) || !isHash(row.hash) || !isHash(row.prevHash) || typeof row.time !== 'string') {
      problems.push({
        day,
        rowKey: row.rowKey,
        kind: 'malformed',
        message: `row ${row.rowKey} is not an audit event (no seq, time, hash or prevHash)`,
      });
      continue;
    }
    const other = events.get(row.seq);
    if (other) {
      problems.push({
        day,
        seq: row.seq,
        rowKey: row.rowKey,
        kind: 'duplicate',
        message: `rows ${other.rowKey} and ${row.rowKey} both claim event ${day}#${row.seq}`,
      });
      continue;
    }
    events.set(row.seq, row);
  }

  const hashes = new Map<number, string>();
  const maxSeq = Math.max(0, ...events.keys());
  for (let seq = 1; seq <= maxSeq; seq++) {
    const row = events.get(seq);
    if (!row) {
      let last = seq;
      while (last + 1 <= maxSeq && !events.has(last + 1)) last++;
      problems.push({
        day,
        seq,
        kind: 'missing',
        message:
          last === seq
            ? `event ${day}#${seq} is missing: it was deleted`
            : `events ${day}#${seq}–${last} are missing: they were deleted`,
      });
      seq = last;
      continue;
    }
    const stored = row.hash as string;
    hashes.set(seq, stored);
    if (hashOf(row) !== stored) {
      problems.push({
        day,
        seq,
        rowKey: row.rowKey,
        kind: 'edited',
        message: `event ${day}#${seq} (${row.rowKey}) was changed after it was written: its columns no longer match its hash`,
      });
    }
    const before = events.get(seq - 1);
    if (seq > 1 && before && row.prevHash !== before.hash) {
      problems.push({
        day,
        seq,
        rowKey: row.rowKey,
        kind: 'broken-link',
        message: `event ${day}#${seq} does not follow event #${seq - 1}: one of them was replaced or re-chained`,
      });
    }
    if (seq === 1 && row.prevDay === undefined && row.prevHash !== GENESIS_HASH) {
      problems.push({
        day,
        seq,
        rowKey: row.rowKey,
        kind: 'broken-link',
        message: `event ${day}#1 links to a hash but names no earlier day`,
      });
    }
  }

  let head: ChainHead | undefined;
  if (headRowFound) {
    if (isSeq(headRowFound.seq) && isHash(headRowFound.hash)) {
      head = { seq: headRowFound.seq, hash: headRowFound.hash, time: String(headRowFound.time) };
    } else {
      problems.push({ day, kind: 'head-mismatch', message: `the head row of ${day} is not a valid head` });
    }
  } else if (events.size > 0) {
    problems.push({
      day,
      kind: 'head-missing',
      message: `the head row of ${day} is missing: the day's last events cannot be checked`,
    });
  }
  if (head) {
    if (head.seq > maxSeq) {
      problems.push({
        day,
        seq: maxSeq + 1,
        kind: 'missing',
        message:
          head.seq === maxSeq + 1
            ? `event ${day}#${head.seq} is missing: the head records ${head.seq} events, so the day's last event was deleted`
            : `events ${day}#${maxSeq + 1}–${head.seq} are missing: the head records ${head.seq} events, so the day's last events were deleted`,
      });
    } else if (head.seq < maxSeq) {
      problems.push({
        day,
        seq: head.seq + 1,
        kind: 'unrecorded',
        message: `events ${day}#${head.seq + 1}–${maxSeq} are not recorded in the day's head: they were written around the chain`,
      });
    } else if (head.hash !== events.get(maxSeq)?.hash) {
      problems.push({
        day,
        seq: maxSeq,
        kind: 'head-mismatch',
        message: `the head of ${day} records a different hash for event #${maxSeq}: that event was replaced`,
      });
    }
  }

  const first = events.get(1);
  const anchor =
    first && typeof first.prevDay === 'string' && isSeq(first.prevSeq)
      ? { day: first.prevDay, seq: first.prevSeq, hash: first.prevHash as string }
      : undefined;
  return { day, events: events.size, head, anchor, hashes, problems: sortProblems(problems) };
}

/** Problems in chain order: by day, then seq (day-level problems first). */
export function sortProblems(problems: ChainProblem[]): ChainProblem[] {
  return [...problems].sort((a, b) => a.day.localeCompare(b.day) || (a.seq ?? 0) - (b.seq ?? 0));
}
