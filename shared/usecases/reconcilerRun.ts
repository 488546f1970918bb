import type { Deps } from './deps';
import { reconcile } from './reconcile';
import type { ReconcileOptions, ReconcilePorts, ReconcileReport } from './reconcile';

/** What a run needs: the reconciler's ports and the lease that keeps it alone. */
export type ReconcilerRunPorts = ReconcilePorts & Pick<Deps, 'leases'>;

/** The reconciler's lease: `JitNsgs`, partition `lease`, RowKey `run|reconcile`. */
export const RECONCILER_LEASE = 'reconcile';

/**
 * One reconciler run, unless another instance is running it. Azure runs a timer function on one instance at a time
 * through a storage lock (https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#scale-out), but
 * runs can still overlap: two apps sharing the storage account under one host id (a deployment slot), an instance
 * that loses that lock while its run goes on, a run started by hand next to the timer's. Each step of a run is safe
 * against a concurrent one (conditional writes, NSG leases), but two runs closing the same grant each record its
 * rules' removal and each hand a stalled request on with its own audit event. So a run takes a lease of its own,
 * renewed while it runs; a second one finds it held and skips, leaving the work to the holder and the next tick.
 * Returns the run's report, or undefined when it skipped.
 */
export async function runReconciler(
  deps: ReconcilerRunPorts,
  options: ReconcileOptions = {},
): Promise<ReconcileReport | undefined> {
  const outcome = await deps.leases.runAlone(RECONCILER_LEASE, () => reconcile(deps, options));
  if (outcome.ran) return outcome.value;
  deps.log.info('reconcile.skipped', { reason: 'another run holds the lease', holder: outcome.holder });
  return undefined;
}
