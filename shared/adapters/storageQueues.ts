import { QueueClient } from '@azure/storage-queue';
import type { TokenCredential } from '@azure/core-auth';
import type { Connection } from '../config';
import type { WorkQueues } from '../domain/ports';
import { QUEUES } from '../names';

/** A QueueClient from a connection string (sandbox) or an endpoint with a credential (Azure). */
export function queueClient(
  connection: Connection,
  queue: string,
  credential: () => TokenCredential,
): QueueClient {
  if (connection.kind === 'connectionString') return new QueueClient(connection.connectionString, queue);
  return new QueueClient(`${connection.endpoint.replace(/\/$/, '')}/${queue}`, credential());
}

/**
 * The hops between functions. Messages are plain JSON text: host.json sets `messageEncoding: none`, so the
 * Functions host hands the text to the trigger as it was sent.
 */
export class StorageWorkQueues implements WorkQueues {
  constructor(
    private readonly requests: QueueClient,
    private readonly grants: QueueClient,
  ) {}

  static fromConnection(connection: Connection, credential: () => TokenCredential): StorageWorkQueues {
    return new StorageWorkQueues(
      queueClient(connection, QUEUES.requests, credential),
      queueClient(connection, QUEUES.grants, credential),
    );
  }

  async enqueueEvaluation(requestId: string): Promise<void> {
    await this.requests.sendMessage(JSON.stringify({ requestId }));
  }

  async enqueueGrant(requestId: string): Promise<void> {
    await this.grants.sendMessage(JSON.stringify({ requestId }));
  }
}
