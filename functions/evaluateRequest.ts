import { declareFunction } from '../shared/hosting/declare';
import { parseRequestMessage } from '../shared/hosting/messages';
import { QUEUES, CONNECTIONS } from '../shared/names';
import { evaluateRequest } from '../shared/usecases/evaluation';

/** Queue `jit-requests`: decide a new request by its policy. Throwing lets the host retry, then poison. */
export default declareFunction({
  name: 'evaluateRequest',
  trigger: { type: 'storageQueue', queueName: QUEUES.requests, connection: CONNECTIONS.storage },
  handler: async (message, context, { deps }) => {
    const m = parseRequestMessage(message);
    if (!m) return void context.warn(JSON.stringify({ event: 'evaluate.malformed-message' }));
    await evaluateRequest(deps, m.requestId);
  },
});
