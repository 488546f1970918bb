import { declareFunction } from '../shared/hosting/declare';
import { parseStartMessage } from '../shared/hosting/messages';
import { CONNECTIONS, SERVICE_BUS_QUEUES } from '../shared/names';
import { startScheduledRequest } from '../shared/usecases/lifecycle';

/**
 * Service Bus `jit-starts`: a request made ahead of time reaches its start and goes on to be applied (queue
 * jit-grants). Throwing abandons the message for redelivery.
 */
export default declareFunction({
  name: 'scheduledStarts',
  trigger: {
    type: 'serviceBusQueue',
    queueName: SERVICE_BUS_QUEUES.starts,
    connection: CONNECTIONS.serviceBus,
  },
  handler: async (message, context, { deps }) => {
    const m = parseStartMessage(message);
    if (!m) return void context.warn(JSON.stringify({ event: 'start.malformed-message' }));
    await startScheduledRequest(deps, m);
  },
});
