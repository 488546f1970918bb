import type { HttpResponseInit } from '@azure/functions';
import { policyDocumentToYaml } from '../shared/domain/policyDocument';
import { declareFunction } from '../shared/hosting/declare';
import { wantsYaml } from '../shared/http/documentBody';
import { httpEndpoint } from '../shared/http/handler';
import { getPolicies, getPolicy } from '../shared/usecases/policies';

/**
 * `GET /api/policies`: the policy set as the document `PUT` takes (JSON; YAML with `Accept: application/yaml`).
 * `GET /api/policies?scope=<ARM id>`: one policy. Jit.Admin only.
 */
export default declareFunction({
  name: 'getPolicies',
  trigger: { type: 'http', route: 'policies', methods: ['GET'] },
  handler: httpEndpoint(async ({ request, deps, caller }): Promise<HttpResponseInit> => {
    const scope = request.query.get('scope');
    if (scope !== null) return { status: 200, jsonBody: await getPolicy(deps, caller, scope) };
    const document = await getPolicies(deps, caller);
    if (!wantsYaml(request)) return { status: 200, headers: { Vary: 'Accept' }, jsonBody: document };
    return {
      status: 200,
      headers: { 'Content-Type': 'application/yaml; charset=utf-8', Vary: 'Accept' },
      body: policyDocumentToYaml(document),
    };
  }),
});
