import { declareFunction } from '../shared/hosting/declare';
import { depsFor } from '../shared/composition';
import { reconcile } from '../shared/usecases/reconcile';

/**
 * Timer, on the schedule in the JIT_RECONCILE_SCHEDULE setting (every two minutes as deployed) and at start-up:
 * close what expired but is still open, hand on what stalled.
 */
export default declareFunction({
  name: 'reconcile',
  trigger: { type: 'timer', schedule: '%JIT_RECONCILE_SCHEDULE%', runOnStartup: true },
  handler: async (_timer, context) => {
    await reconcile(depsFor(context));
  },
});
