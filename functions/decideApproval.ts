import { declareFunction } from '../shared/hosting/declare';
import { consumeApprovalQuota } from '../shared/http/handler';
import {
  assertSameOrigin,
  errorPageResponse,
  htmlResponse,
  pageEndpoint,
  readForm,
} from '../shared/http/pages';
import { decideApproval } from '../shared/usecases/approvals';
import { resultPage } from '../shared/views/approvalPage';

/** `POST /api/approvals`: an approver's decision, from the form on the link's page. */
export default declareFunction({
  name: 'decideApproval',
  trigger: { type: 'http', route: 'approvals', methods: ['POST'] },
  whenUnavailable: errorPageResponse,
  handler: pageEndpoint(async ({ services, request, deps, publicBaseUrl, signedIn, callerAddress }) => {
    await consumeApprovalQuota(services, signedIn?.id, callerAddress);
    assertSameOrigin(request.headers, publicBaseUrl);
    const form = await readForm(request);
    const outcome = await decideApproval(deps, {
      token: form.get('token') ?? '',
      formToken: form.get('csrf') ?? '',
      decision: form.get('decision') ?? '',
      comment: form.get('comment') ?? undefined,
      signedIn,
      clientAddress: callerAddress,
    });
    return htmlResponse(200, resultPage(outcome));
  }),
});
