import type { ServiceBusClient } from '@azure/service-bus';
import type { StartMessage, StartScheduler } from '../domain/ports';
import { scheduledMessageId } from '../domain/scheduledMessages';
import { SERVICE_BUS_QUEUES } from '../names';
import { ScheduledMessages } from './serviceBusScheduledMessages';

/**
 * One scheduled Service Bus message per request made ahead of time, on `jit-starts`, due at its start.
 * A queue of its own rather than a kind of message on `jit-expirations`: a start and an end are different
 * handlers, and an operator reading the queues sees at a glance what will open and what will close.
 */
export class ServiceBusStartScheduler implements StartScheduler {
  private readonly messages: ScheduledMessages;

  constructor(client: ServiceBusClient) {
    this.messages = new ScheduledMessages(client, SERVICE_BUS_QUEUES.starts, 'start');
  }

  scheduleStart(message: StartMessage, at: Date): Promise<string> {
    return this.messages.schedule(
      scheduledMessageId('start', message.requestId, message.startAt),
      message,
      at,
    );
  }

  cancelStart(sequenceNumber: string): Promise<void> {
    return this.messages.cancel(sequenceNumber);
  }

  close(): Promise<void> {
    return this.messages.close();
  }
}
