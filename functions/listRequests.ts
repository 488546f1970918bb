import { declareFunction } from '../shared/hosting/declare';
import { httpEndpoint } from '../shared/http/handler';
import { listRequests } from '../shared/usecases/lifecycle';

/** `GET /api/requests`: the caller's requests, newest first, filtered and paged. */
export default declareFunction({
  name: 'listRequests',
  trigger: { type: 'http', route: 'requests', methods: ['GET'] },
  handler: httpEndpoint(async ({ request, deps, caller }) => ({
    status: 200,
    jsonBody: await listRequests(deps, caller, Object.fromEntries(request.query)),
  })),
});
