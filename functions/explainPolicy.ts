import { declareFunction } from '../shared/hosting/declare';
import { httpEndpoint } from '../shared/http/handler';
import { explainAccess } from '../shared/usecases/policies';

/**
 * `GET /api/policies/explain?vm=<VM id>[&port=22][&protocol=Tcp]`: which policy decides for the VM and why.
 * Admins for any VM; others for VMs they may request.
 */
export default declareFunction({
  name: 'explainPolicy',
  trigger: { type: 'http', route: 'policies/explain', methods: ['GET'] },
  handler: httpEndpoint(async ({ request, deps, caller }) => ({
    status: 200,
    jsonBody: await explainAccess(deps, caller, Object.fromEntries(request.query.entries())),
  })),
});
