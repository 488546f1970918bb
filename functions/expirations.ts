import { declareFunction } from '../shared/hosting/declare';
import { parseApprovalDeadlineMessage, parseExpiryMessage } from '../shared/hosting/messages';
import { CONNECTIONS, SERVICE_BUS_QUEUES } from '../shared/names';
import { expireApproval } from '../shared/usecases/approvals';
import { expireGrant } from '../shared/usecases/expiry';

/**
 * Service Bus `jit-expirations`: a grant's scheduled end, or (`kind: approval-deadline`) the moment a pending
 * request stops waiting for approvers. Throwing abandons the message for redelivery. (Not "revoke": that is the
 * user's action, functions/revokeRequest.ts.)
 */
export default declareFunction({
  name: 'expirations',
  trigger: {
    type: 'serviceBusQueue',
    queueName: SERVICE_BUS_QUEUES.expirations,
    connection: CONNECTIONS.serviceBus,
  },
  handler: async (message, context, { deps }) => {
    const deadline = parseApprovalDeadlineMessage(message);
    if (deadline) return expireApproval(deps, deadline);
    const m = parseExpiryMessage(message);
    if (!m) return void context.warn(JSON.stringify({ event: 'expire.malformed-message' }));
    await expireGrant(deps, m);
  },
});
