import { ServiceBusClient } from '@azure/service-bus';
import type { TokenCredential } from '@azure/core-auth';
import type { Connection } from '../config';
import type { ExpiryMessage, ExpiryScheduler } from '../domain/ports';
import { scheduledMessageId } from '../domain/scheduledMessages';
import { SERVICE_BUS_QUEUES } from '../names';
import { ScheduledMessages } from './serviceBusScheduledMessages';

export function serviceBusClient(
  connection: Connection,
  credential: () => TokenCredential,
): ServiceBusClient {
  return connection.kind === 'connectionString'
    ? new ServiceBusClient(connection.connectionString)
    : new ServiceBusClient(connection.endpoint, credential());
}

/** One scheduled Service Bus message per grant on `jit-expirations`, due at the grant's expiry. */
export class ServiceBusExpiryScheduler implements ExpiryScheduler {
  private readonly messages: ScheduledMessages;

  constructor(client: ServiceBusClient) {
    this.messages = new ScheduledMessages(client, SERVICE_BUS_QUEUES.expirations, 'expire');
  }

  scheduleExpiry(message: ExpiryMessage, at: Date): Promise<string> {
    const id = scheduledMessageId('expire', message.requestId, message.expiresAt);
    return this.messages.schedule(id, message, at);
  }

  cancelExpiry(sequenceNumber: string): Promise<void> {
    return this.messages.cancel(sequenceNumber);
  }

  close(): Promise<void> {
    return this.messages.close();
  }
}
