import { declareFunction } from '../shared/hosting/declare';
import { consumeCallQuota, httpEndpoint, readJson } from '../shared/http/handler';
import { extendRequest } from '../shared/usecases/lifecycle';

/** `POST /api/requests/{id}/extend`: move the end of live access later, within its policy's maximum. */
export default declareFunction({
  name: 'extendRequest',
  trigger: { type: 'http', route: 'requests/{id}/extend', methods: ['POST'] },
  handler: httpEndpoint(async ({ services, request, deps, caller }) => {
    await consumeCallQuota(services, 'extend', caller.id);
    return {
      status: 200,
      jsonBody: await extendRequest(deps, caller, request.params.id ?? '', await readJson(request)),
    };
  }),
});
