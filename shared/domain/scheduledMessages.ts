/**
 * The scheduled Service Bus messages that drive a request in time: its start, its approval deadline, its expiry.
 * Every path that schedules or cancels one must leave exactly one live message per purpose. The queues require
 * duplicate detection, so the message id says which message a schedule means, and the rules below say when a
 * message may be cancelled. docs/operations.md ("Exactly one message per purpose") explains the whole scheme.
 */
import { isFinal } from './types';
import type { AccessRequest } from './types';

/** What a scheduled message is for; the first part of its id. */
export type SchedulePurpose = 'expire' | 'start' | 'approval-deadline';

/**
 * `<purpose>:<request id>:<version>`, the version being the due time in epoch milliseconds. A request's due time
 * for a purpose is fixed (start, approval deadline) or only ever moves later (an extension moves the expiry), so
 * the id names one version of one purpose: a retry of the same step sends the same id, which Service Bus drops as
 * a duplicate within its history window, and a new version sends a new id, which it never drops.
 */
export function scheduledMessageId(purpose: SchedulePurpose, requestId: string, dueAt: string): string {
  const version = Date.parse(dueAt);
  if (Number.isNaN(version)) throw new Error(`${purpose} message of ${requestId}: '${dueAt}' is not a time`);
  return `${purpose}:${requestId}:${version}`;
}

/** What a scheduled expiry message carries. `expiresAt` lets a stale message (after an extension) be ignored. */
export interface ExpiryMessage {
  requestId: string;
  expiresAt: string;
}

/** What a scheduled start message carries. `startAt` lets a stale message (the request changed) be ignored. */
export interface StartMessage {
  requestId: string;
  startAt: string;
}

/** What the scheduled approval deadline message carries, on the `jit-expirations` queue beside expiries. */
export interface ApprovalDeadlineMessage {
  kind: 'approval-deadline';
  requestId: string;
  deadline: string;
}

/** The body of the request's scheduled message for `purpose`, due at `dueAt`: what its handler reads. */
export function scheduledMessageBody(
  purpose: SchedulePurpose,
  requestId: string,
  dueAt: string,
): ExpiryMessage | StartMessage | ApprovalDeadlineMessage {
  switch (purpose) {
    case 'expire':
      return { requestId, expiresAt: dueAt };
    case 'start':
      return { requestId, startAt: dueAt };
    case 'approval-deadline':
      return { kind: 'approval-deadline', requestId, deadline: dueAt };
  }
}

/** A scheduled message as a use case knows it: its sequence number, and the due time it was scheduled for. */
export interface ScheduledRef {
  sequenceNumber: string;
  dueAt: string;
}

/**
 * Whether a scheduled message can never be the live one of its purpose (`expire` or `start`) for this request, so
 * that cancelling it is safe: the request has ended (or is gone), or the request records another message for the
 * purpose at a version at least as late as this one. Anything else is kept, even a message nobody has recorded
 * yet: whoever records the purpose next schedules the same id, Service Bus drops that as a duplicate, and the
 * adapter hands back this message's number. Cancelling it instead would leave the id in the duplicate history
 * with nothing live behind it. A kept message nobody records is ignored by its handler when it comes due (its
 * body carries the due time, which no longer matches the request).
 */
export function isSuperseded(
  request: AccessRequest | undefined,
  purpose: 'expire' | 'start',
  message: ScheduledRef,
): boolean {
  if (!request || isFinal(request.status)) return true;
  const recorded = purpose === 'expire' ? request.expirySequenceNumber : request.startSequenceNumber;
  const version = purpose === 'expire' ? request.expiresAt : request.startAt;
  if (recorded === undefined || version === undefined || recorded === message.sequenceNumber) return false;
  return Date.parse(version) >= Date.parse(message.dueAt);
}
