import type { ServiceBusClient, ServiceBusSender } from '@azure/service-bus';
import Long from 'long';
import type { StartMessage, StartScheduler } from '../domain/ports';
import { SERVICE_BUS_QUEUES } from '../names';

/**
 * One scheduled Service Bus message per request made ahead of time, on `jit-starts`, due at its start.
 * A queue of its own rather than a kind of message on `jit-expirations`: a start and an end are different
 * handlers, and an operator reading the queues sees at a glance what will open and what will close.
 */
export class ServiceBusStartScheduler implements StartScheduler {
  private readonly sender: ServiceBusSender;

  constructor(client: ServiceBusClient) {
    this.sender = client.createSender(SERVICE_BUS_QUEUES.starts);
  }

  async scheduleStart(message: StartMessage, at: Date): Promise<string> {
    const [seq] = await this.sender.scheduleMessages(
      {
        body: message,
        contentType: 'application/json',
        // Same id for the same request and start: namespaces with duplicate detection drop a re-send.
        messageId: `start-${message.requestId}-${Date.parse(message.startAt)}`,
        subject: 'start',
      },
      at,
    );
    if (!seq) throw new Error('Service Bus returned no sequence number for a scheduled message');
    return seq.toString();
  }

  async cancelStart(sequenceNumber: string): Promise<void> {
    await this.sender.cancelScheduledMessages(Long.fromString(sequenceNumber));
  }

  async close(): Promise<void> {
    await this.sender.close();
  }
}
