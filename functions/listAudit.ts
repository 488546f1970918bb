import { declareFunction } from '../shared/hosting/declare';
import { consumeCallQuota, httpEndpoint } from '../shared/http/handler';
import { listAudit } from '../shared/usecases/audit';

/** `GET /api/audit`: the audit trail, newest first, filtered and paged. Auditors and admins only. */
export default declareFunction({
  name: 'listAudit',
  trigger: { type: 'http', route: 'audit', methods: ['GET'] },
  handler: httpEndpoint(async ({ services, request, caller }) => {
    await consumeCallQuota(services, 'audit', caller.id);
    return { status: 200, jsonBody: await listAudit(services.auditTrail, caller, request.query.entries()) };
  }),
});
