import { sortProblems, verifyDay } from '../domain/auditChain';
import type { ChainAnchor, ChainProblem } from '../domain/auditChain';
import { daysBetween, parseAuditQuery, parseVerifyRange } from '../domain/auditQuery';
import type { AuditPage, VerifyRange, VerifyReport } from '../domain/auditQuery';
import { RoleRequired } from '../domain/errors';
import type { AuditTrail, Clock } from '../domain/ports';
import type { Principal } from '../domain/types';

/** Roles that may read the audit trail. Requesters see their own requests through `GET /api/requests/{id}`. */
export const AUDIT_READER_ROLES = ['Jit.Auditor', 'Jit.Admin'];

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
): Promise<VerifyReport> {
  assertAuditReader(caller);
  return verifyChain(trail, parseVerifyRange(params, clock.now()));
}

/**
 * Recomputes every hash and link of the days in range, checks each day's head and each day's link to the day
 * before it (reading that day when it lies outside the range), and that the list of days names every day found.
 * Reads one day at a time, so memory holds one day's rows plus one hash per event.
 */
export async function verifyChain(trail: AuditTrail, range: VerifyRange): Promise<VerifyReport> {
  const problems: ChainProblem[] = [];
  const report: VerifyReport = { ...range, ok: true, events: 0, days: [], problems: [], problemCount: 0 };
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

  const sorted = sortProblems(problems);
  report.problemCount = sorted.length;
  report.problems = sorted.slice(0, MAX_PROBLEMS);
  report.firstBreak = sorted[0];
  report.ok = sorted.length === 0;
  return report;
}
