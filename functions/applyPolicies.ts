import { declareFunction } from '../shared/hosting/declare';
import { queryFlag, readPolicyDocumentBody } from '../shared/http/documentBody';
import { consumeCallQuota, httpEndpoint } from '../shared/http/handler';
import { applyPolicies } from '../shared/usecases/policies';

/** `PUT /api/policies[?dryRun=true]`: the document (YAML or JSON) replaces the policy set. Jit.Admin only. */
export default declareFunction({
  name: 'applyPolicies',
  trigger: { type: 'http', route: 'policies', methods: ['PUT'] },
  handler: httpEndpoint(async ({ services, request, deps, caller, callerAddress }) => {
    await consumeCallQuota(services, 'policies', caller.id);
    return {
      status: 200,
      jsonBody: await applyPolicies(
        deps,
        caller,
        { text: await readPolicyDocumentBody(request), source: '(body)' },
        { dryRun: queryFlag(request, 'dryRun'), clientAddress: callerAddress },
      ),
    };
  }),
});
