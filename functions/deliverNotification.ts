import { declareFunction } from '../shared/hosting/declare';
import { parseNotificationMessage } from '../shared/hosting/messages';
import { CONNECTIONS, QUEUES } from '../shared/names';
import { deliverNotification } from '../shared/usecases/notifyChannels';

/**
 * Queue `jit-notifications`: one attempt at posting one notification to one Teams, Slack or webhook target. Its
 * own retries and dead-letter are in the use case; a throw here (storage unreachable) is retried by the host.
 */
export default declareFunction({
  name: 'deliverNotification',
  trigger: { type: 'storageQueue', queueName: QUEUES.notifications, connection: CONNECTIONS.storage },
  handler: async (message, context, { deps }) => {
    const m = parseNotificationMessage(message);
    if (!m) return void context.warn(JSON.stringify({ event: 'notify.malformed-message' }));
    await deliverNotification(deps, m);
  },
});
