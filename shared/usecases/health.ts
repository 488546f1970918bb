import type { FeatureStates } from '../domain/featureStates';
import { ROLES, hasRole } from '../domain/roles';
import type { Principal } from '../domain/types';
import type { RunningVersion } from '../version';

/** One feature as an admin sees it: ready, or off because of one setting (its name and why, never its value). */
type FeatureReadiness = { ready: true } | { ready: false; setting: string; reason: string };

/** What `GET /api/health` answers. */
export interface HealthReport extends RunningVersion {
  /**
   * `ok`: every feature is ready. `degraded`: a broken setting switched a feature off; expiry, revoke and the
   * reconciler still run. `unavailable`: a core setting is broken and nothing runs.
   */
  status: 'ok' | 'degraded' | 'unavailable';
  /** Each feature's readiness, for callers with the Jit.Admin role only. */
  features?: Record<string, FeatureReadiness>;
}

/**
 * The report of an app whose services could be built: anyone sees status and version, admins each feature. An
 * instance that refuses callers (`serving` false: its start-up check failed, shared/usecases/serving.ts) is
 * degraded however ready its settings are: the timers still close access, but no call is answered.
 */
export function healthReport(
  features: FeatureStates,
  version: RunningVersion,
  caller: Principal | undefined,
  serving = true,
): HealthReport {
  const all = Object.entries(features);
  const ok = serving && all.every(([, f]) => f.ready);
  const report: HealthReport = { status: ok ? 'ok' : 'degraded', ...version };
  if (caller && hasRole(caller, ROLES.admin)) {
    report.features = Object.fromEntries(
      all.map(([name, f]): [string, FeatureReadiness] => [
        name,
        f.ready ? { ready: true } : { ready: false, ...f.problem },
      ]),
    );
  }
  return report;
}
