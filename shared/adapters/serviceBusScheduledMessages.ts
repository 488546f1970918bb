import { ServiceBusClient } from '@azure/service-bus';
import type { ServiceBusReceiver, ServiceBusSender } from '@azure/service-bus';
import type { TokenCredential } from '@azure/core-auth';
import Long from 'long';
import type { Connection } from '../config';
import type { ScheduledMessages } from '../domain/ports';
import { scheduledMessageBody, scheduledMessageId } from '../domain/scheduledMessages';
import type { SchedulePurpose } from '../domain/scheduledMessages';
import { SERVICE_BUS_QUEUES } from '../names';

export function serviceBusClient(
  connection: Connection,
  credential: () => TokenCredential,
): ServiceBusClient {
  return connection.kind === 'connectionString'
    ? new ServiceBusClient(connection.connectionString)
    : new ServiceBusClient(connection.endpoint, credential());
}

/**
 * The queue each purpose's messages go to. Expiries and approval deadlines share `jit-expirations` (told apart by
 * the body's `kind` and the message's `subject`): both end something, and the one handler there ignores a message
 * that no longer matches its request. Starts have `jit-starts` to themselves: a start and an end are different
 * handlers, and an operator reading the queues sees at a glance what will open and what will close.
 */
const QUEUE_OF: Readonly<Record<SchedulePurpose, string>> = {
  expire: SERVICE_BUS_QUEUES.expirations,
  'approval-deadline': SERVICE_BUS_QUEUES.expirations,
  start: SERVICE_BUS_QUEUES.starts,
};

/**
 * Every scheduled message of a request (its start, approval deadline and expiry) on Service Bus, one sender and one
 * peeking receiver per queue. An approval deadline is never cancelled: arriving after a decision, it finds the
 * request no longer pending and does nothing.
 */
export class ServiceBusScheduledMessages implements ScheduledMessages {
  private readonly queues = new Map<string, QueueScheduler>();

  constructor(private readonly client: ServiceBusClient) {}

  schedule(purpose: SchedulePurpose, requestId: string, dueAt: string, enqueueAt = dueAt): Promise<string> {
    return this.queue(purpose).schedule(
      scheduledMessageId(purpose, requestId, dueAt),
      purpose,
      scheduledMessageBody(purpose, requestId, dueAt),
      new Date(enqueueAt),
    );
  }

  cancel(purpose: SchedulePurpose, sequenceNumber: string): Promise<void> {
    return this.queue(purpose).cancel(sequenceNumber);
  }

  async close(): Promise<void> {
    for (const q of this.queues.values()) await q.close();
    this.queues.clear();
  }

  private queue(purpose: SchedulePurpose): QueueScheduler {
    const name = QUEUE_OF[purpose];
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new QueueScheduler(this.client, name)));
    return q;
  }
}

/** Messages looked at per peek while searching a queue for a message id. */
const PEEK_PAGE_SIZE = 100;

/**
 * Scheduling on a queue that requires duplicate detection (every queue of ours: infra/modules/service-bus.bicep),
 * done so that the caller always gets the sequence number of the message that will actually come.
 *
 * Service Bus accepts a message whose id it saw within the history window and drops it, and a dropped scheduled
 * message still answers with a sequence number, one that names nothing
 * (https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection,
 * https://github.com/Azure/azure-service-bus/issues/265). Recording that number would make every later cancel a
 * no-op and leave the earlier message, the live one, unknown. So after scheduling, the number is checked by
 * peeking at it (peeking shows scheduled messages with their numbers:
 * https://learn.microsoft.com/azure/service-bus-messaging/message-browsing); when it does not carry our id, the
 * queue is searched for the message that does, and that one's number is returned.
 *
 * If no message carries the id and its time has come, it has been delivered (a message due in the past is enqueued
 * at once, under a new sequence number: https://learn.microsoft.com/azure/service-bus-messaging/message-sequencing);
 * the number is returned as it is, there being nothing left to cancel. If its time is still ahead, an earlier one
 * was cancelled, leaving the id in the history: the message is scheduled again under the id with the dropped
 * number appended, which is unique and which the search recognises as the same purpose and version.
 *
 * Cost: one schedule and one peek; a search only when Service Bus dropped a duplicate (a retry), through every
 * message in the queue, a page of 100 per call.
 */
class QueueScheduler {
  private readonly sender: ServiceBusSender;
  private readonly receiver: ServiceBusReceiver;

  constructor(client: ServiceBusClient, queue: string) {
    this.sender = client.createSender(queue);
    // Only ever used to peek, which takes no lock and receives nothing.
    this.receiver = client.createReceiver(queue);
  }

  /**
   * Schedules `body` under `messageId` at `at`; returns the sequence number of the live message with that id.
   * `subject` is set on the message, so that an operator peeking at the queue sees what each one is for.
   */
  async schedule(messageId: string, subject: string, body: unknown, at: Date): Promise<string> {
    const send = (id: string) => this.send(id, subject, body, at);
    const sequenceNumber = await send(messageId);
    if (await this.carries(sequenceNumber, messageId)) return sequenceNumber.toString();
    const live = await this.find(messageId);
    if (live) return live;
    if (at.getTime() <= Date.now()) return sequenceNumber.toString();
    const again = `${messageId}:${sequenceNumber.toString()}`;
    const retried = await send(again);
    if (await this.carries(retried, again)) return retried.toString();
    // Only a concurrent schedule under the same new id could get here; its message is the live one.
    return (await this.find(again)) ?? retried.toString();
  }

  /** Cancels a scheduled message; one already delivered, cancelled or never stored is fine. */
  async cancel(sequenceNumber: string): Promise<void> {
    await this.sender.cancelScheduledMessages(Long.fromString(sequenceNumber));
  }

  async close(): Promise<void> {
    await this.receiver.close();
    await this.sender.close();
  }

  private async send(messageId: string, subject: string, body: unknown, at: Date): Promise<Long> {
    const [sequenceNumber] = await this.sender.scheduleMessages(
      { body, contentType: 'application/json', messageId, subject },
      at,
    );
    if (!sequenceNumber) throw new Error('Service Bus returned no sequence number for a scheduled message');
    return sequenceNumber;
  }

  /** Whether the message stored at `sequenceNumber` is the one with `messageId`. */
  private async carries(sequenceNumber: Long, messageId: string): Promise<boolean> {
    const [found] = await this.receiver.peekMessages(1, { fromSequenceNumber: sequenceNumber });
    return found?.sequenceNumber?.equals(sequenceNumber) === true && found.messageId === messageId;
  }

  /** The sequence number of a message in the queue (scheduled, or already due) scheduled under `messageId`. */
  private async find(messageId: string): Promise<string | undefined> {
    let from = Long.ZERO;
    for (;;) {
      const page = await this.receiver.peekMessages(PEEK_PAGE_SIZE, { fromSequenceNumber: from });
      const last = page.at(-1)?.sequenceNumber;
      if (!last) return undefined;
      const match = page.find(
        (m) =>
          typeof m.messageId === 'string' &&
          (m.messageId === messageId || m.messageId.startsWith(`${messageId}:`)),
      );
      if (match?.sequenceNumber) return match.sequenceNumber.toString();
      from = last.add(1);
    }
  }
}
