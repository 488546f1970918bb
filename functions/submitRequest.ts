import { declareFunction } from '../shared/hosting/declare';
import { consumeRequestQuota, httpEndpoint, readJson } from '../shared/http/handler';
import { submitRequest } from '../shared/usecases/requests';

/** `POST /api/requests`: ask for access. 202 with the request; it goes on asynchronously. */
export default declareFunction({
  name: 'submitRequest',
  trigger: { type: 'http', route: 'requests', methods: ['POST'] },
  handler: httpEndpoint(async ({ services, request, deps, caller, callerAddress }) => {
    await consumeRequestQuota(services, caller.id);
    const created = await submitRequest(deps, caller, await readJson(request), callerAddress);
    // Accepted, not done: Location is where to follow it, Retry-After how soon there is news.
    return {
      status: 202,
      headers: { Location: `/api/requests/${created.id}`, 'Retry-After': '1' },
      jsonBody: created,
    };
  }),
});
