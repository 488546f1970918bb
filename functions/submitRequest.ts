import { declareFunction } from '../shared/hosting/declare';
import { consumeRequestQuota, httpEndpoint, readJson } from '../shared/http/handler';
import { submitRequest } from '../shared/usecases/requests';

/** `POST /api/requests`: ask for access. 202 with the request; it goes on asynchronously. */
export default declareFunction({
  name: 'submitRequest',
  trigger: { type: 'http', route: 'requests', methods: ['POST'] },
  handler: httpEndpoint(async ({ request, deps, caller, callerAddress }) => {
    await consumeRequestQuota(caller.id);
    const created = await submitRequest(deps, caller, await readJson(request), callerAddress);
    return { status: 202, headers: { Location: `/api/requests/${created.id}` }, jsonBody: created };
  }),
});
