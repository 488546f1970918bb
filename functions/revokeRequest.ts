import { declareFunction } from '../shared/hosting/declare';
import { consumeCallQuota, httpEndpoint } from '../shared/http/handler';
import { revokeRequest } from '../shared/usecases/lifecycle';

/** `POST /api/requests/{id}/revoke`: end access now (rules closed before it answers), or cancel it before it starts. */
export default declareFunction({
  name: 'revokeRequest',
  trigger: { type: 'http', route: 'requests/{id}/revoke', methods: ['POST'] },
  handler: httpEndpoint(async ({ services, request, deps, caller }) => {
    await consumeCallQuota(services, 'revoke', caller.id);
    return { status: 200, jsonBody: await revokeRequest(deps, caller, request.params.id ?? '') };
  }),
});
