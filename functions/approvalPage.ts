import { declareFunction } from '../shared/hosting/declare';
import { errorPageResponse, htmlResponse, pageEndpoint } from '../shared/http/pages';
import { viewApproval } from '../shared/usecases/approvals';
import { decisionPage } from '../shared/views/approvalPage';

/**
 * `GET /api/approvals?token=…`: the page an approval link opens. It shows the request and the Approve / Deny
 * forms and changes nothing, because mail security scanners fetch every link in a mail.
 */
export default declareFunction({
  name: 'approvalPage',
  trigger: { type: 'http', route: 'approvals', methods: ['GET'] },
  whenUnavailable: errorPageResponse,
  handler: pageEndpoint(
    async ({ request, deps, signedIn }) =>
      htmlResponse(
        200,
        decisionPage({
          ...(await viewApproval(deps, request.query.get('token') ?? '', signedIn)),
          intent: request.query.get('intent'),
        }),
      ),
    'sign-in',
  ),
});
