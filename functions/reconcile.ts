import { declareFunction } from '../shared/hosting/declare';
import { runReconciler } from '../shared/usecases/reconcilerRun';

/**
 * Timer, on the schedule in the JIT_RECONCILE_SCHEDULE setting (every two minutes as deployed): close what expired
 * but is still open, hand on what stalled, remove orphan rules, restore baseline deny rules, report drift — within
 * JIT_RECONCILE_MAX_ARM_CALLS ARM calls, one run at a time across instances. See docs/operations.md.
 *
 * Not `runOnStartup`: Azure starts the runtime whenever the app wakes, restarts or scales out, so such a run comes
 * "at highly unpredictable times", and the docs advise against it in production
 * (https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#configuration). The next tick is at
 * most one schedule interval away. The local sandbox runs it at start (dev/sandbox.ts `reconcileOnStart`).
 */
export default declareFunction({
  name: 'reconcile',
  trigger: { type: 'timer', schedule: '%JIT_RECONCILE_SCHEDULE%' },
  handler: async (_timer, _context, { deps }) => {
    await runReconciler(deps);
  },
});
