import {
  ANCHOR_DELAY_MS,
  ANCHOR_LOOKBACK_DAYS,
  anchorOf,
  compareWithAnchor,
  sameAnchor,
} from '../domain/auditAnchor';
import { dayOf, sortProblems, verifyDay } from '../domain/auditChain';
import type { ChainAnchor, ChainProblem, DayCheck } from '../domain/auditChain';
import { daysBetween, parseAuditQuery, parseVerifyRange } from '../domain/auditQuery';
import type { AuditPage, VerifyRange, VerifyReport } from '../domain/auditQuery';
import { RoleRequired } from '../domain/errors';
import { ROLES } from '../domain/roles';
import type { AuditAnchorStore, AuditTrail, Clock } from '../domain/ports';
import type { Signals } from '../domain/signals';
import type { Principal } from '../domain/types';
import type { Logger } from './deps';

/** Roles that may read the audit trail. Requesters see their own requests through `GET /api/requests/{id}`. */
const AUDIT_READER_ROLES: readonly string[] = [ROLES.auditor, ROLES.admin];

function assertAuditReader(caller: Principal): void {
  if (!caller.roles.some((r) => AUDIT_READER_ROLES.includes(r))) throw new RoleRequired(AUDIT_READER_ROLES);
}

/** `GET /api/audit`: one page of events, newest first. */
export async function listAudit(
  trail: AuditTrail,
  caller: Principal,
  params: Iterable<[string, string]>,
): Promise<AuditPage> {
  assertAuditReader(caller);
  const { query, pageSize, continuationToken } = parseAuditQuery(params);
  return trail.listEvents(query, { pageSize, continuationToken });
}

export type { VerifyReport } from '../domain/auditQuery';

const MAX_PROBLEMS = 1000;

/** `GET /api/audit/verify`: recomputes the chain over whole UTC days. */
export async function verifyAudit(
  trail: AuditTrail,
  clock: Clock,
  caller: Principal,
  params: Iterable<[string, string]>,
  anchors?: AuditAnchorStore,
): Promise<VerifyReport> {
  assertAuditReader(caller);
  return verifyChain(trail, parseVerifyRange(params, clock.now()), anchors);
}

/**
 * Recomputes every hash and link of the days in range, checks each day's head and each day's link to the day
 * before it (reading that day when it lies outside the range), and that the list of days names every day found.
 * Reads one day at a time, so memory holds one day's rows plus one hash per event.
 */
export async function verifyChain(
  trail: AuditTrail,
  range: VerifyRange,
  anchorStore?: AuditAnchorStore,
): Promise<VerifyReport> {
  const problems: ChainProblem[] = [];
  const report: VerifyReport = {
    ...range,
    ok: true,
    events: 0,
    days: [],
    anchors: { checked: anchorStore !== undefined, anchoredDays: 0 },
    problems: [],
    problemCount: 0,
  };
  const checks = new Map<string, DayCheck>();
  const hashes = new Map<string, Map<number, string>>();
  const anchors: Array<{ day: string; anchor: ChainAnchor }> = [];
  const listed = new Set(await trail.listDays(range.fromDay, range.toDay));

  // Every calendar day is read, not only the listed ones: a day deleted from the list must still be checked.
  for (const day of daysBetween(range.fromDay, range.toDay)) {
    const rows = await trail.readDay(day);
    if (rows.length === 0) continue;
    const check = verifyDay(day, rows);
    report.events += check.events;
    report.days.push({ day, events: check.events, headSeq: check.head?.seq, headHash: check.head?.hash });
    problems.push(...check.problems);
    hashes.set(day, check.hashes);
    checks.set(day, check);
    if (check.anchor) anchors.push({ day, anchor: check.anchor });
    if (check.events > 0 && !listed.has(day)) {
      problems.push({
        day,
        kind: 'unregistered',
        message: `${day} has events but is missing from the list of days, which hides it from time-range queries`,
      });
    }
  }

  for (const { day, anchor } of anchors) {
    let stored = hashes.get(anchor.day)?.get(anchor.seq);
    if (stored === undefined && !hashes.has(anchor.day)) {
      const row = await trail.findEvent(anchor.day, anchor.seq);
      stored = typeof row?.hash === 'string' ? row.hash : undefined;
    }
    if (stored === undefined) {
      problems.push({
        day,
        seq: 1,
        kind: 'anchor-missing',
        message: `event ${day}#1 links to ${anchor.day}#${anchor.seq}, which is gone: that day was deleted or cut short`,
      });
    } else if (stored !== anchor.hash) {
      problems.push({
        day,
        seq: 1,
        kind: 'anchor-mismatch',
        message: `event ${day}#1 links to ${anchor.day}#${anchor.seq}, whose hash differs: that event was rewritten`,
      });
    }
  }

  // The anchors outside the table: the check a rewrite of the table, chain recomputed, cannot pass.
  if (anchorStore) {
    for (const day of await anchorStore.listDays(range.fromDay, range.toDay)) {
      const anchor = await anchorStore.get(day);
      if (anchor === undefined) continue;
      report.anchors.anchoredDays++;
      const entry = report.days.find((d) => d.day === day);
      if (entry) entry.anchored = true;
      if (anchor === 'invalid') {
        problems.push({
          day,
          kind: 'anchor-differs',
          message: `the anchor stored for ${day} is not an anchor`,
        });
        continue;
      }
      problems.push(...compareWithAnchor(day, checks.get(day), anchor));
    }
  }

  const sorted = sortProblems(problems);
  report.problemCount = sorted.length;
  report.problems = sorted.slice(0, MAX_PROBLEMS);
  report.firstBreak = sorted[0];
  report.ok = sorted.length === 0;
  return report;
}

/** What `anchorAuditDays` needs. */
export interface AnchorDeps {
  trail: AuditTrail;
  anchors: AuditAnchorStore;
  clock: Clock;
  signals: Signals;
  log: Logger;
}

/** What one anchoring run did, day by day. */
export interface AnchorReport {
  anchored: string[];
  /** Days that already had their anchor (and it matched). */
  present: string[];
  /** Days that could not be anchored, with why. */
  failed: Array<{ day: string; error: string }>;
}

/**
 * Timer `anchorAudit`: writes the anchor of every finished day of the last ANCHOR_LOOKBACK_DAYS that has events and
 * no anchor yet, ANCHOR_DELAY_MS after the day ended. A day whose chain is already broken is not anchored (that would
 * seal the damage as sound): it is reported, as is an anchor already stored that no longer matches the table.
 */
export async function anchorAuditDays(deps: AnchorDeps): Promise<AnchorReport> {
  const now = deps.clock.now().getTime();
  // The latest day that ended at least ANCHOR_DELAY_MS ago.
  const toDay = dayOf(now - ANCHOR_DELAY_MS - 86_400_000);
  const fromDay = dayOf(Date.parse(toDay) - (ANCHOR_LOOKBACK_DAYS - 1) * 86_400_000);
  const report: AnchorReport = { anchored: [], present: [], failed: [] };
  const have = new Set(await deps.anchors.listDays(fromDay, toDay));
  const fail = (day: string, error: string) => {
    report.failed.push({ day, error });
    deps.signals.event('jit.audit.anchor-failed', { day, error });
    deps.log.error('audit.anchor-failed', { day, error });
  };
  for (const day of await deps.trail.listDays(fromDay, toDay)) {
    const check = verifyDay(day, await deps.trail.readDay(day));
    const anchor = anchorOf(check, new Date(now));
    if (have.has(day)) {
      const stored = await deps.anchors.get(day);
      if (stored && stored !== 'invalid' && !('refused' in anchor) && sameAnchor(stored, anchor))
        report.present.push(day);
      else fail(day, `the anchor stored for ${day} does not match the table`);
      continue;
    }
    if ('refused' in anchor) {
      if (check.events > 0) fail(day, `not anchored: ${anchor.refused}`);
      continue;
    }
    if ((await deps.anchors.create(anchor)) === 'exists') {
      // Written by another run meanwhile: the next run compares it.
      report.present.push(day);
      continue;
    }
    report.anchored.push(day);
    deps.signals.event('jit.audit.anchored', { day, events: anchor.events, headSeq: anchor.headSeq });
    deps.log.info('audit.anchored', { day, events: anchor.events, headSeq: anchor.headSeq });
  }
  return report;
}
