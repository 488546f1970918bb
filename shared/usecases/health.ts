import type { Features, SettingProblem } from '../config';
import { ROLES, hasRole } from '../domain/roles';
import type { Principal } from '../domain/types';
import type { RunningVersion } from '../version';

/** One feature as an admin sees it: ready, or off because of one setting (its name and why, never its value). */
export type FeatureReadiness = { ready: true } | ({ ready: false } & SettingProblem);

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

/** The report of an app whose services could be built: anyone sees status and version, admins each feature. */
export function healthReport(
  features: Features,
  version: RunningVersion,
  caller: Principal | undefined,
): HealthReport {
  const all = Object.entries(features);
  const report: HealthReport = { status: all.every(([, f]) => f.ready) ? 'ok' : 'degraded', ...version };
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
