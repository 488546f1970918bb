/**
 * Scheduled messages: held apart from the queue until their scheduled enqueue time, then enqueued earliest
 * first (by sequence number among equals); cancellation by sequence number.
 *
 * A scheduled message gets a new sequence number when it comes due: the number `scheduleMessages` returned
 * is "only valid while the message is in this state. As the message transitions to the active state, the
 * message is appended to the queue as if had been enqueued at the current instant, which includes assigning a
 * new SequenceNumber" (https://learn.microsoft.com/azure/service-bus-messaging/message-sequencing#scheduled-messages).
 */
import type { Message } from 'rhea';

import { compareBigInt } from './codec';
import type { Dispatcher } from './delivery';
import { shouldDrop } from './faults';
import { guarded } from './log';
import { MAX_TIMER_DELAY_IN_MS } from './model';
import type { QueueState } from './model';

export class Scheduler {
  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly isStopping: () => boolean,
  ) {}

  /** Holds a message until `due`; returns the sequence number it is scheduled under. */
  schedule(queue: QueueState, message: Message, due: Date): bigint {
    const sequenceNumber = queue.takeSequenceNumber();
    queue.scheduled.set(sequenceNumber, { sequenceNumber, message, scheduledEnqueueTime: due });
    this.arm(queue);
    return sequenceNumber;
  }

  cancel(queue: QueueState, sequenceNumber: bigint): void {
    if (queue.scheduled.delete(sequenceNumber)) this.arm(queue);
  }

  private arm(queue: QueueState): void {
    clearTimeout(queue.schedulerTimer);
    queue.schedulerTimer = undefined;
    if (this.isStopping()) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const scheduled of queue.scheduled.values()) {
      earliest = Math.min(earliest, scheduled.scheduledEnqueueTime.getTime());
    }
    if (!Number.isFinite(earliest)) return;
    queue.schedulerTimer = setTimeout(
      () => guarded('scheduled_enqueue_failed', () => this.enqueueDue(queue)),
      Math.min(Math.max(earliest - Date.now(), 0), MAX_TIMER_DELAY_IN_MS),
    );
    queue.schedulerTimer.unref();
  }

  /** Enqueues what has come due, earliest first and by sequence number among equals. */
  private enqueueDue(queue: QueueState): void {
    // Timers may fire a millisecond early; whatever is not yet due waits for the re-armed timer.
    const now = Date.now();
    const due = [...queue.scheduled.values()]
      .filter((scheduled) => scheduled.scheduledEnqueueTime.getTime() <= now)
      .sort(
        (a, b) =>
          a.scheduledEnqueueTime.getTime() - b.scheduledEnqueueTime.getTime() ||
          compareBigInt(a.sequenceNumber, b.sequenceNumber),
      );
    try {
      for (const scheduled of due) {
        queue.scheduled.delete(scheduled.sequenceNumber);
        if (!shouldDrop(queue, scheduled.message)) {
          // Enqueued "as if had been enqueued at the current instant", with a new sequence number (file header).
          this.dispatcher.enqueue(queue, queue.takeSequenceNumber(), scheduled.message);
        }
      }
    } finally {
      this.arm(queue);
    }
  }
}
