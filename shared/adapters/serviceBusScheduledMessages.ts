import type { ServiceBusClient, ServiceBusReceiver, ServiceBusSender } from '@azure/service-bus';
import Long from 'long';

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
export class ScheduledMessages {
  private readonly sender: ServiceBusSender;
  private readonly receiver: ServiceBusReceiver;

  /** `subject` is set on every message, so that an operator peeking at the queue sees what each one is for. */
  constructor(
    client: ServiceBusClient,
    queue: string,
    private readonly subject: string,
  ) {
    this.sender = client.createSender(queue);
    // Only ever used to peek, which takes no lock and receives nothing.
    this.receiver = client.createReceiver(queue);
  }

  /** Schedules `body` under `messageId` at `at`; returns the sequence number of the live message with that id. */
  async schedule(messageId: string, body: unknown, at: Date): Promise<string> {
    const sequenceNumber = await this.send(messageId, body, at);
    if (await this.carries(sequenceNumber, messageId)) return sequenceNumber.toString();
    const live = await this.find(messageId);
    if (live) return live;
    if (at.getTime() <= Date.now()) return sequenceNumber.toString();
    const again = `${messageId}:${sequenceNumber.toString()}`;
    const retried = await this.send(again, body, at);
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

  private async send(messageId: string, body: unknown, at: Date): Promise<Long> {
    const [sequenceNumber] = await this.sender.scheduleMessages(
      { body, contentType: 'application/json', messageId, subject: this.subject },
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
