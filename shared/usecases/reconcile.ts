import type { AuditAction } from '../domain/auditActions';
import type { AccessRequest } from '../domain/types';
import type { Deps } from './deps';
import { expireGrant, failGrant } from './grants';

/** What one reconciler run did, for its log line and for tests. */
export interface ReconcileReport {
  examined: number;
  closedExpired: number;
  redriven: number;
  failedStuck: number;
  forgotten: number;
  errors: number;
}

export interface ReconcileOptions {
  /** Most open requests examined in one run, to bound its ARM calls. */
  maxRequests?: number;
  /** How long a request may sit in `submitted` or `approved` before it is handed on again. */
  staleAfterInSeconds?: number;
}

/**
 * The safety net (timer): walks the open requests and heals what the message flow missed.
 * - active past expiresAt + grace: close it (a lost or failed expiry message, a crash);
 * - approved whose deadline passed before it went live: remove what was written, mark failed;
 * - submitted / approved sitting still: hand on again (a lost enqueue);
 * - an index row of a final or missing request: drop it.
 * Every action goes through the same idempotent use cases as the message flow, so two runs at once are safe.
 */
export async function reconcile(deps: Deps, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    examined: 0,
    closedExpired: 0,
    redriven: 0,
    failedStuck: 0,
    forgotten: 0,
    errors: 0,
  };
  const max = options.maxRequests ?? 500;
  const staleMs = (options.staleAfterInSeconds ?? 120) * 1000;
  const now = deps.clock.now().getTime();
  const graceMs = deps.settings.expiryGraceInSeconds * 1000;

  for await (const id of deps.requests.listOpen()) {
    if (report.examined >= max) break;
    report.examined++;
    try {
      const found = await deps.requests.get(id);
      if (
        !found ||
        ['denied', 'approval-expired', 'failed', 'expired', 'revoked'].includes(found.value.status)
      ) {
        await deps.requests.forgetOpen(id);
        report.forgotten++;
        continue;
      }
      const r = found.value;
      const idle = now - Date.parse(r.updatedAt) > staleMs;
      const deadline = r.expiresAt ? Date.parse(r.expiresAt) : undefined;
      if (r.status === 'active' && deadline !== undefined && now > deadline + graceMs) {
        await expireGrant(deps, { requestId: r.id, expiresAt: r.expiresAt as string }, 'system:reconciler');
        report.closedExpired++;
      } else if (r.status === 'approved' && deadline !== undefined && now > deadline + graceMs) {
        await failGrant(
          deps,
          found,
          'the grant could not be completed before its expiry; the reconciler removed what was written',
          'system:reconciler',
        );
        report.failedStuck++;
      } else if (r.status === 'approved' && idle) {
        await deps.queues.enqueueGrant(r.id);
        await redriven(deps, r, 'applyGrant');
        report.redriven++;
      } else if (r.status === 'submitted' && idle) {
        await deps.queues.enqueueEvaluation(r.id);
        await redriven(deps, r, 'evaluateRequest');
        report.redriven++;
      }
    } catch (err) {
      report.errors++;
      deps.log.error('reconcile.request-failed', { requestId: id, error: String(err) });
    }
  }
  deps.log.info('reconcile.done', { ...report });
  return report;
}

function redriven(deps: Deps, r: AccessRequest, step: string): Promise<void> {
  return deps.audit.append({
    actor: 'system:reconciler',
    action: 'reconcile.redriven' satisfies AuditAction,
    requestId: r.id,
    vm: r.vmId,
    ports: r.ports,
    sourcePrefix: r.sourcePrefix,
    detail: `${r.status} since ${r.updatedAt}: handed on to ${step} again`,
  });
}
