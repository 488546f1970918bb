import { declareFunction } from '../shared/hosting/declare';
import { queryFlag } from '../shared/http/documentBody';
import { consumeCallQuota, httpEndpoint } from '../shared/http/handler';
import { deletePolicy } from '../shared/usecases/policies';

/** `DELETE /api/policies?scope=<ARM id>[&dryRun=true]`: removes one policy. Jit.Admin only. */
export default declareFunction({
  name: 'deletePolicy',
  trigger: { type: 'http', route: 'policies', methods: ['DELETE'] },
  handler: httpEndpoint(async ({ services, request, deps, caller, callerAddress }) => {
    await consumeCallQuota(services, 'policies', caller.id);
    return {
      status: 200,
      jsonBody: await deletePolicy(deps, caller, request.query.get('scope') ?? '', {
        dryRun: queryFlag(request, 'dryRun'),
        clientAddress: callerAddress,
      }),
    };
  }),
});
