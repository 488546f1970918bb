/**
 * The broker's message annotations: how a stored or scheduled message looks to the client when it is received
 * or peeked (sequence number, enqueued time, lock expiry, state), and the scheduled enqueue time a sender sets.
 */
import { types as amqpTypes } from 'rhea';
import type { Message } from 'rhea';

import { longBytes } from './codec';
import type { ScheduledMessage, StoredMessage } from './model';

export const Annotation = {
  sequenceNumber: 'x-opt-sequence-number',
  enqueuedTime: 'x-opt-enqueued-time',
  lockedUntil: 'x-opt-locked-until',
  scheduledEnqueueTime: 'x-opt-scheduled-enqueue-time',
  messageState: 'x-opt-message-state',
} as const;

/** `x-opt-message-state` of a scheduled message; the client reports it as `state: 'scheduled'`. */
const SCHEDULED_MESSAGE_STATE = 2;

/** The message as a consumer receives it: stored content plus the broker's annotations and header. */
export function toWire(
  stored: StoredMessage,
  options: { deliveryCount: number; lockedUntil?: Date },
): Message {
  return {
    ...stored.message,
    delivery_count: options.deliveryCount,
    message_annotations: {
      ...(stored.message.message_annotations ?? {}),
      [Annotation.sequenceNumber]: amqpTypes.wrap_long(longBytes(stored.sequenceNumber)),
      [Annotation.enqueuedTime]: stored.enqueuedTime,
      ...(options.lockedUntil ? { [Annotation.lockedUntil]: options.lockedUntil } : {}),
    },
  };
}

export function scheduledToWire(scheduled: ScheduledMessage): Message {
  return {
    ...scheduled.message,
    delivery_count: 0,
    message_annotations: {
      ...(scheduled.message.message_annotations ?? {}),
      [Annotation.sequenceNumber]: amqpTypes.wrap_long(longBytes(scheduled.sequenceNumber)),
      [Annotation.enqueuedTime]: scheduled.scheduledEnqueueTime,
      [Annotation.messageState]: SCHEDULED_MESSAGE_STATE,
    },
  };
}

/** The time a sender asked the message to be enqueued at, if it set `x-opt-scheduled-enqueue-time`. */
export function scheduledEnqueueTimeOf(message: Message): Date | undefined {
  return dateAnnotation(message, Annotation.scheduledEnqueueTime);
}

function dateAnnotation(message: Message, name: string): Date | undefined {
  const value: unknown = message.message_annotations?.[name];
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  return undefined;
}
