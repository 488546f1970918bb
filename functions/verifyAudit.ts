import { declareFunction } from '../shared/hosting/declare';
import { consumeCallQuota, httpEndpoint } from '../shared/http/handler';
import { verifyAudit } from '../shared/usecases/audit';

/** `GET /api/audit/verify?from=&to=`: recomputes the audit hash chain over those days and compares it with the anchors kept outside the table. Auditors and admins only. */
export default declareFunction({
  name: 'verifyAudit',
  trigger: { type: 'http', route: 'audit/verify', methods: ['GET'] },
  handler: httpEndpoint(async ({ services, request, caller, deps }) => {
    await consumeCallQuota(services, 'audit-verify', caller.id);
    return {
      status: 200,
      jsonBody: await verifyAudit(
        services.auditTrail,
        deps.clock,
        caller,
        request.query.entries(),
        services.auditAnchors,
      ),
    };
  }),
});
