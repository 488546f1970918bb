import { ServiceBusClient } from '@azure/service-bus';
import type { ServiceBusSender } from '@azure/service-bus';
import type { TokenCredential } from '@azure/core-auth';
import Long from 'long';
import type { Connection } from '../config';
import type { ExpiryMessage, ExpiryScheduler } from '../domain/ports';
import { SERVICE_BUS_QUEUES } from '../names';

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
  private readonly sender: ServiceBusSender;

  constructor(client: ServiceBusClient) {
    this.sender = client.createSender(SERVICE_BUS_QUEUES.expirations);
  }

  async scheduleExpiry(message: ExpiryMessage, at: Date): Promise<string> {
    const [seq] = await this.sender.scheduleMessages(
      {
        body: message,
        contentType: 'application/json',
        // Same id for the same grant and expiry: namespaces with duplicate detection drop a re-send.
        messageId: `expire-${message.requestId}-${Date.parse(message.expiresAt)}`,
        subject: 'expire',
      },
      at,
    );
    if (!seq) throw new Error('Service Bus returned no sequence number for a scheduled message');
    return seq.toString();
  }

  async cancelExpiry(sequenceNumber: string): Promise<void> {
    await this.sender.cancelScheduledMessages(Long.fromString(sequenceNumber));
  }

  async close(): Promise<void> {
    await this.sender.close();
  }
}
