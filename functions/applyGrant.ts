import { declareFunction } from '../shared/hosting/declare';
import { parseRequestMessage } from '../shared/hosting/messages';
import { QUEUES, CONNECTIONS } from '../shared/names';
import { applyGrant } from '../shared/usecases/applying';

/** Queue `jit-grants`: write the NSG rules of an approved request and schedule its expiry. */
export default declareFunction({
  name: 'applyGrant',
  trigger: { type: 'storageQueue', queueName: QUEUES.grants, connection: CONNECTIONS.storage },
  handler: async (message, context, { deps }) => {
    const m = parseRequestMessage(message);
    if (!m) return void context.warn(JSON.stringify({ event: 'apply.malformed-message' }));
    await applyGrant(deps, m.requestId);
  },
});
