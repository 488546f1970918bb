import { declareFunction } from '../shared/hosting/declare';
import { depsFor } from '../shared/composition';
import { reconcile } from '../shared/usecases/reconcile';

/**
 * Timer, on the schedule in the JIT_RECONCILE_SCHEDULE setting (every two minutes as deployed) and at start-up:
 * close what expired but is still open, hand on what stalled, remove orphan rules, restore baseline deny rules,
 * report drift — within JIT_RECONCILE_MAX_ARM_CALLS ARM calls. See docs/operations.md.
 */
export default declareFunction({
  name: 'reconcile',
  trigger: { type: 'timer', schedule: '%JIT_RECONCILE_SCHEDULE%', runOnStartup: true },
  handler: async (_timer, context) => {
    await reconcile(depsFor(context));
  },
});
