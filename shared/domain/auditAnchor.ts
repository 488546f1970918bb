/**
 * Anchors of the audit trail outside its table. The hash chain (auditChain.ts) shows an edited, deleted or
 * re-ordered row, but someone who can write the table can also recompute every hash after their change. So once a
 * UTC day is over, its head (last seq and hash) and a digest of all its events are written to a blob container
 * under a time-based retention (WORM) policy, where nobody — the app's identity and storage administrators
 * included — can overwrite or delete them until the retention ends. Verification compares the table with these
 * anchors: a rewritten day no longer matches its anchor, whatever its chain says (docs/audit.md).
 *
 * Pure: no I/O; node:crypto for the digest.
 */
import { createHash } from 'node:crypto';
import type { ChainProblem, DayCheck } from './auditChain';

/** Tag of the anchor format, so a later format is a new version, not a misread. */
export const ANCHOR_FORMAT = 'jit-audit-anchor/1';
/** How long after a day ends before it is anchored: instances' clocks and appends in flight settle first. */
export const ANCHOR_DELAY_MS = 15 * 60_000;
/** How many days back the anchoring job looks for a day still without an anchor (a missed run, an outage). */
export const ANCHOR_LOOKBACK_DAYS = 7;

/** One day's anchor, as stored (`<day>.json` in the container jit-audit-anchors). */
export interface DayAnchor {
  format: typeof ANCHOR_FORMAT;
  day: string;
  /** Event rows of the day. */
  events: number;
  /** The head row's last seq and hash: the chain's end that day. */
  headSeq: number;
  headHash: string;
  /** SHA-256 over the day's event hashes in seq order, one per line: every event, not only the last link. */
  digest: string;
  /** When the anchor was written (ISO 8601). */
  anchoredAt: string;
}

/** The digest of a day: its events' hashes in seq order. */
function dayDigest(hashes: ReadonlyMap<number, string>): string {
  const ordered = [...hashes.entries()].sort(([a], [b]) => a - b).map(([, h]) => h);
  return createHash('sha256').update(ordered.join('\n'), 'utf8').digest('hex');
}

/**
 * The anchor of a day as verification found it, or why it must not be anchored: a day whose chain is already
 * broken is reported, never sealed as if it were sound.
 */
export function anchorOf(check: DayCheck, at: Date): DayAnchor | { refused: string } {
  if (check.problems.length) return { refused: check.problems[0]!.message };
  if (!check.head || check.events === 0) return { refused: `${check.day} has no events to anchor` };
  return {
    format: ANCHOR_FORMAT,
    day: check.day,
    events: check.events,
    headSeq: check.head.seq,
    headHash: check.head.hash,
    digest: dayDigest(check.hashes),
    anchoredAt: at.toISOString(),
  };
}

/** Whether two anchors say the same about their day (when they were written aside). */
export function sameAnchor(a: DayAnchor, b: DayAnchor): boolean {
  return (
    a.day === b.day &&
    a.events === b.events &&
    a.headSeq === b.headSeq &&
    a.headHash === b.headHash &&
    a.digest === b.digest
  );
}

/** Reads a stored anchor; undefined for anything that is not one (the caller reports it). */
export function parseAnchor(text: string): DayAnchor | undefined {
  try {
    const a = JSON.parse(text) as Partial<DayAnchor>;
    const hex = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
    if (
      a.format === ANCHOR_FORMAT &&
      typeof a.day === 'string' &&
      /^\d{4}-\d{2}-\d{2}$/.test(a.day) &&
      Number.isInteger(a.events) &&
      Number.isInteger(a.headSeq) &&
      hex(a.headHash) &&
      hex(a.digest) &&
      typeof a.anchoredAt === 'string'
    )
      return a as DayAnchor;
  } catch {
    // not JSON: not an anchor
  }
  return undefined;
}

/**
 * What a day's rows say against its anchor. A day the table no longer has, or whose head, event count or digest
 * differ, was rewritten or deleted after it was anchored, even if its chain is consistent in itself.
 */
export function compareWithAnchor(
  day: string,
  check: DayCheck | undefined,
  anchor: DayAnchor,
): ChainProblem[] {
  if (!check || check.events === 0) {
    return [
      {
        day,
        kind: 'anchored-day-missing',
        message: `${day} was anchored with ${anchor.events} events (head #${anchor.headSeq}), but the table has none: the day was deleted`,
      },
    ];
  }
  const digest = dayDigest(check.hashes);
  const differs: string[] = [];
  if (check.events !== anchor.events)
    differs.push(`${check.events} events where ${anchor.events} were anchored`);
  if (check.head?.seq !== anchor.headSeq || check.head?.hash !== anchor.headHash)
    differs.push(`head #${check.head?.seq ?? '-'} where #${anchor.headSeq} was anchored`);
  if (digest !== anchor.digest) differs.push('a different digest of its events');
  if (!differs.length) return [];
  return [
    {
      day,
      kind: 'anchor-differs',
      message: `${day} does not match its anchor of ${anchor.anchoredAt} (${differs.join('; ')}): the day was rewritten after it was anchored`,
    },
  ];
}
