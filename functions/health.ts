import { declareFunction } from '../shared/hosting/declare';
import { optionalCaller } from '../shared/http/handler';
import { healthReport } from '../shared/usecases/health';
import { runningVersion } from '../shared/version';

const NOT_CACHED = { 'Cache-Control': 'no-store' };

/**
 * `GET /api/health`, open to anyone: the overall status and the running version; with the Jit.Admin role, each
 * feature's readiness and, for one that is off, the setting and why. 200 while the core runs (even degraded, since
 * expiry and revoke still work); 503 when a core setting is broken. See docs/operations.md.
 */
export default declareFunction({
  name: 'health',
  trigger: { type: 'http', route: 'health', methods: ['GET'] },
  // The services could not be built at the host's start: a core setting is broken and nothing runs.
  whenUnavailable: (err, context) => {
    context.error(JSON.stringify({ event: 'health.unavailable', error: (err as Error).message }));
    return { status: 503, headers: NOT_CACHED, jsonBody: { status: 'unavailable', ...runningVersion() } };
  },
  handler: async (request, _context, services) => {
    const caller = await optionalCaller(services, request);
    const serving = await services.serving().then(
      () => true,
      () => false,
    );
    return {
      status: 200,
      headers: NOT_CACHED,
      jsonBody: healthReport(services.config.features, runningVersion(), caller, serving),
    };
  },
});
