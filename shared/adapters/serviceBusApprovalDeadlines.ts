import type { ServiceBusClient } from '@azure/service-bus';
import type { ApprovalDeadlineMessage, ApprovalDeadlineScheduler } from '../domain/ports';
import { scheduledMessageId } from '../domain/scheduledMessages';
import { SERVICE_BUS_QUEUES } from '../names';
import { ScheduledMessages } from './serviceBusScheduledMessages';

/**
 * The approval deadline of a pending request: one Service Bus message scheduled at the deadline on the same
 * `jit-expirations` queue as grant expiries, told apart by `kind` (and `subject`). Arriving after a decision,
 * it finds the request no longer pending and does nothing, so it is never cancelled.
 */
export class ServiceBusApprovalDeadlines implements ApprovalDeadlineScheduler {
  private readonly messages: ScheduledMessages;

  constructor(client: ServiceBusClient) {
    this.messages = new ScheduledMessages(client, SERVICE_BUS_QUEUES.expirations, 'approval-deadline');
  }

  scheduleApprovalDeadline(message: ApprovalDeadlineMessage, at: Date): Promise<string> {
    const id = scheduledMessageId('approval-deadline', message.requestId, message.deadline);
    return this.messages.schedule(id, message, at);
  }

  close(): Promise<void> {
    return this.messages.close();
  }
}
