import { QueueClient } from '@azure/storage-queue';
import type { TokenCredential } from '@azure/core-auth';
import type { Connection } from '../config';
import type { NotificationMessage } from '../domain/notifications';
import type { NotificationQueue, WorkQueues } from '../domain/ports';
import { QUEUES } from '../names';

/** A QueueClient from a connection string (sandbox) or an endpoint with a credential (Azure). */
function queueClient(connection: Connection, queue: string, credential: () => TokenCredential): QueueClient {
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

/**
 * jit-notifications and its poison queue. A retry is a new message made visible later (`visibilityTimeout` of Put
 * Message, up to 7 days: https://learn.microsoft.com/rest/api/storageservices/put-message), so each attempt has its
 * own back-off; the dead-letter copy carries why it was given up.
 */
export class StorageNotificationQueue implements NotificationQueue {
  constructor(
    private readonly queue: QueueClient,
    private readonly poison: QueueClient,
  ) {}

  static fromConnection(connection: Connection, credential: () => TokenCredential): StorageNotificationQueue {
    return new StorageNotificationQueue(
      queueClient(connection, QUEUES.notifications, credential),
      queueClient(connection, `${QUEUES.notifications}-poison`, credential),
    );
  }

  async send(message: NotificationMessage, delayInSeconds = 0): Promise<void> {
    await this.queue.sendMessage(JSON.stringify(message), {
      visibilityTimeout: delayInSeconds > 0 ? Math.round(delayInSeconds) : undefined,
    });
  }

  async deadLetter(message: NotificationMessage, error: string): Promise<void> {
    await this.poison.sendMessage(JSON.stringify({ ...message, error }));
  }
}
