import { declareFunction } from '../shared/hosting/declare';
import { depsFor, services } from '../shared/composition';
import { anchorAuditDays } from '../shared/usecases/audit';

/**
 * Timer, hourly at 20 past: writes each finished day's audit chain head and digest to the immutable container
 * jit-audit-anchors (docs/audit.md). Hourly so a failed run is retried within the hour; a day already anchored is
 * only compared. Does nothing when no anchor store is configured.
 */
export default declareFunction({
  name: 'anchorAudit',
  trigger: { type: 'timer', schedule: '0 20 * * * *', runOnStartup: false },
  handler: async (_timer, context) => {
    const { auditTrail, auditAnchors } = services();
    if (!auditAnchors) return;
    const deps = depsFor(context);
    await anchorAuditDays({ ...deps, trail: auditTrail, anchors: auditAnchors });
  },
});
