import type { ServiceBusClient, ServiceBusSender } from '@azure/service-bus';
import type { ApprovalDeadlineMessage, ApprovalDeadlineScheduler } from '../domain/ports';
import { SERVICE_BUS_QUEUES } from '../names';

/**
 * The approval deadline of a pending request: one Service Bus message scheduled at the deadline on the same
 * `jit-expirations` queue as grant expiries, told apart by `kind` (and `subject`). Arriving after a decision,
 * it finds the request no longer pending and does nothing, so it is never cancelled.
 */
export class ServiceBusApprovalDeadlines implements ApprovalDeadlineScheduler {
  private readonly sender: ServiceBusSender;

  constructor(client: ServiceBusClient) {
    this.sender = client.createSender(SERVICE_BUS_QUEUES.expirations);
  }

  async scheduleApprovalDeadline(message: ApprovalDeadlineMessage, at: Date): Promise<string> {
    const [seq] = await this.sender.scheduleMessages(
      {
        body: message,
        contentType: 'application/json',
        messageId: `approval-deadline-${message.requestId}-${Date.parse(message.deadline)}`,
        subject: 'approval-deadline',
      },
      at,
    );
    if (!seq) throw new Error('Service Bus returned no sequence number for a scheduled message');
    return seq.toString();
  }

  async close(): Promise<void> {
    await this.sender.close();
  }
}
