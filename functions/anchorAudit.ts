import { declareFunction } from '../shared/hosting/declare';
import { anchorAuditDays } from '../shared/usecases/audit';

/**
 * Timer, hourly at 20 past: writes each finished day's audit chain head and digest to the immutable container
 * jit-audit-anchors (docs/audit.md). Hourly so a failed run is retried within the hour; a day already anchored is
 * only compared. Does nothing when no anchor store is configured.
 */
export default declareFunction({
  name: 'anchorAudit',
  trigger: { type: 'timer', schedule: '0 20 * * * *', runOnStartup: false },
  handler: async (_timer, _context, { deps, auditTrail, auditAnchors }) => {
    if (!auditAnchors) return;
    await anchorAuditDays({ ...deps, trail: auditTrail, anchors: auditAnchors });
  },
});
