/**
 * Questions auditors ask of the trail (`GET /api/audit`, `GET /api/audit/verify`, `jit audit`): their parameters,
 * validated once here, and the shape of the answers.
 */
import { InvalidRequest } from './errors';
import type { FieldProblem } from './errors';
import { parseVmId } from './resourceId';
import { dayOf, storedRow } from './auditChain';
import type { AuditRow, ChainProblem } from './auditChain';
import type { AuditEvent } from './types';

/** Which events: all filters together (AND). Times are `from <= time < to`; vm and actor are lower-cased. */
export interface AuditQuery {
  from?: Date;
  to?: Date;
  vm?: string;
  actor?: string;
  requestId?: string;
}

/** One event as the API returns it: the event's fields plus where it sits in the chain. */
export interface AuditRecord extends AuditEvent {
  time: string;
  /** The UTC day partition the event is chained in. */
  day: string;
  /** Position in the day's chain, from 1. */
  seq: number;
  hash: string;
  prevHash: string;
  /** On a day's first event: the earlier event it links to. */
  prevDay?: string;
  prevSeq?: number;
}

/** The order a person reads an event in: these, then any other column, then the chain's own (CHAIN_TAIL). */
export const RECORD_ORDER = [
  'time',
  'day',
  'seq',
  'action',
  'actor',
  'actorId',
  'requestId',
  'vm',
  'ports',
  'sourcePrefix',
  'clientAddress',
  'justification',
  'nsg',
  'rule',
  'priority',
  'expiresAt',
  'expirySequenceNumber',
  'eventId',
  'detail',
] as const;
export const CHAIN_TAIL = ['prevDay', 'prevSeq', 'prevHash', 'hash'] as const;

/** An event row as the API shows it: its day, its columns in reading order, the chain's own last. */
export function auditRecordOf(row: AuditRow): AuditRecord {
  const columns: Record<string, unknown> = { day: dayOf(String(row.time)) };
  for (const [k, v] of Object.entries(storedRow(row)))
    if (k !== 'partitionKey' && k !== 'rowKey') columns[k] = v;
  if (typeof columns.ports === 'string') columns.ports = columns.ports.split(',').filter(Boolean).map(Number);
  const out: Record<string, unknown> = {};
  for (const k of RECORD_ORDER) if (columns[k] !== undefined) out[k] = columns[k];
  for (const k of Object.keys(columns).sort())
    if (!(k in out) && !(CHAIN_TAIL as readonly string[]).includes(k)) out[k] = columns[k];
  for (const k of CHAIN_TAIL) if (columns[k] !== undefined) out[k] = columns[k];
  return out as unknown as AuditRecord;
}

/** One page, newest first. A page may be short (even empty) and still have a token: follow it to the end. */
export interface AuditPage {
  items: AuditRecord[];
  continuationToken?: string;
}

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;
/** Longest range one verification covers: it reads every row of every day. */
const MAX_VERIFY_DAYS = 366;

const EARLIEST = Date.UTC(2000, 0, 1);
const LATEST = Date.UTC(2200, 0, 1);
const DAY_MS = 86_400_000;

/** `2026-03-14` (midnight UTC) or a date-time with a zone: `2026-03-14T09:30:00Z`, `…T09:30+01:00`. */
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

function parseInstant(text: string): Date | string {
  const m = INSTANT.exec(text);
  if (!m) return 'must be a date (2026-03-14) or a date-time with a zone (2026-03-14T09:30:00Z)';
  const [, y, mo, d] = m.map(Number) as [number, number, number, number];
  const probe = new Date(Date.UTC(y, mo - 1, d));
  if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d)
    return 'is not a calendar date';
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return 'is not a valid time';
  if (ms < EARLIEST || ms > LATEST) return 'must be between 2000-01-01 and 2200-01-01';
  return new Date(ms);
}

/** Collects parameters once each, refusing unknown and repeated ones (a typo must not widen an auditor's answer). */
function collect(
  params: Iterable<[string, string]>,
  known: readonly string[],
  problems: FieldProblem[],
): Map<string, string> {
  const seen = new Map<string, string>();
  for (const [name, value] of params) {
    if (!known.includes(name)) problems.push({ field: name, reason: 'is not a known parameter' });
    else if (seen.has(name)) problems.push({ field: name, reason: 'must be given once' });
    else seen.set(name, value.trim());
  }
  return seen;
}

function timeRange(p: Map<string, string>, problems: FieldProblem[]): { from?: Date; to?: Date } {
  const out: { from?: Date; to?: Date } = {};
  for (const field of ['from', 'to'] as const) {
    const text = p.get(field);
    if (text === undefined || text === '') continue;
    const v = parseInstant(text);
    if (typeof v === 'string') problems.push({ field, reason: v });
    else out[field] = v;
  }
  if (out.from && out.to && out.to <= out.from) problems.push({ field: 'to', reason: 'must be after from' });
  return out;
}

/** Parses `GET /api/audit`'s parameters. Throws `InvalidRequest` naming every bad one. */
export function parseAuditQuery(params: Iterable<[string, string]>): {
  query: AuditQuery;
  pageSize: number;
  continuationToken?: string;
} {
  const problems: FieldProblem[] = [];
  const p = collect(
    params,
    ['from', 'to', 'vm', 'actor', 'requestId', 'pageSize', 'continuationToken'],
    problems,
  );
  const query: AuditQuery = timeRange(p, problems);

  const vm = p.get('vm');
  if (vm) {
    try {
      parseVmId(vm);
      query.vm = vm.toLowerCase();
    } catch (e) {
      problems.push({ field: 'vm', reason: (e as Error).message });
    }
  }
  const actor = p.get('actor');
  if (actor) {
    // eslint-disable-next-line no-control-regex
    if (actor.length > 256 || /[\u0000-\u001f]/.test(actor))
      problems.push({ field: 'actor', reason: 'must be a user name, e-mail address or system:<component>' });
    else query.actor = actor.toLowerCase();
  }
  const requestId = p.get('requestId');
  if (requestId) {
    if (!/^[0-9A-Za-z]{1,64}$/.test(requestId))
      problems.push({ field: 'requestId', reason: 'must be a request id (letters and digits)' });
    else query.requestId = requestId;
  }

  let pageSize = DEFAULT_PAGE_SIZE;
  const size = p.get('pageSize');
  if (size) {
    pageSize = Number(size);
    if (!/^\d+$/.test(size) || pageSize < 1 || pageSize > MAX_PAGE_SIZE)
      problems.push({ field: 'pageSize', reason: `must be a whole number from 1 to ${MAX_PAGE_SIZE}` });
  }
  const continuationToken = p.get('continuationToken') || undefined;
  if (continuationToken && continuationToken.length > 4096)
    problems.push({ field: 'continuationToken', reason: 'is not a token this API returned' });

  if (problems.length) throw new InvalidRequest(problems);
  return { query, pageSize, continuationToken };
}

/** The UTC days a verification covers: `from`'s day through the day of the last instant before `to`. */
export interface VerifyRange {
  fromDay: string;
  toDay: string;
}

/** Parses `GET /api/audit/verify`'s parameters: `from` is required, `to` defaults to now. */
export function parseVerifyRange(params: Iterable<[string, string]>, now: Date): VerifyRange {
  const problems: FieldProblem[] = [];
  const p = collect(params, ['from', 'to'], problems);
  const { from, to } = timeRange(p, problems);
  if (!p.get('from')) problems.push({ field: 'from', reason: 'is required' });
  const end = to ?? now;
  if (from && end.getTime() - from.getTime() > MAX_VERIFY_DAYS * DAY_MS)
    problems.push({ field: 'to', reason: `must be at most ${MAX_VERIFY_DAYS} days after from` });
  if (from && !to && end <= from) problems.push({ field: 'from', reason: 'must be in the past' });
  if (problems.length || !from) throw new InvalidRequest(problems);
  return {
    fromDay: from.toISOString().slice(0, 10),
    toDay: new Date(end.getTime() - 1).toISOString().slice(0, 10),
  };
}

/** Every UTC day from `fromDay` to `toDay`, inclusive, oldest first. */
export function daysBetween(fromDay: string, toDay: string): string[] {
  const out: string[] = [];
  for (let ms = Date.parse(fromDay); ms <= Date.parse(toDay); ms += DAY_MS)
    out.push(new Date(ms).toISOString().slice(0, 10));
  return out;
}

/** What verification found, day by day, and the first broken link in chain order. */
export interface VerifyReport {
  fromDay: string;
  toDay: string;
  /** True when every hash, link, head and anchor checked out. */
  ok: boolean;
  /** Event rows checked. */
  events: number;
  /**
   * Each day with events: its count and the head's seq and hash. Keep these (the export does): a later
   * verification whose heads differ from a kept copy shows a rewrite even where the chain itself is consistent.
   */
  days: Array<{ day: string; events: number; headSeq?: number; headHash?: string; anchored?: boolean }>;
  /**
   * Whether the days were compared with their anchors outside the table (a store is configured), and how many
   * had one. Days not yet anchored (today, yesterday until the anchoring job has run) are checked by the chain alone.
   */
  anchors: { checked: boolean; anchoredDays: number };
  firstBreak?: ChainProblem;
  /** Every problem found, in chain order (at most MAX_PROBLEMS). */
  problems: ChainProblem[];
  problemCount: number;
}
