import { declareFunction } from '../shared/hosting/declare';
import { httpEndpoint } from '../shared/http/handler';
import { getRequest } from '../shared/usecases/requests';

/** `GET /api/requests/{id}`: status, expiry and the rules written. */
export default declareFunction({
  name: 'getRequest',
  trigger: { type: 'http', route: 'requests/{id}', methods: ['GET'] },
  handler: httpEndpoint(async ({ request, deps, caller }) => ({
    status: 200,
    jsonBody: await getRequest(deps, caller, request.params.id ?? ''),
  })),
});
