import { z } from 'zod';
import { NOTIFICATION_KINDS } from '../domain/notifications';
import type { NotificationMessage } from '../domain/notifications';

/**
 * Queue and bus messages as the Functions host hands them over: already-parsed JSON, or text.
 * A message that is not what we send is logged and dropped by the caller (retrying cannot fix it).
 */
const requestMessage = z.object({ requestId: z.string().regex(/^[0-9A-Za-z]{1,64}$/) });
const expiryMessage = z.object({
  requestId: z.string().regex(/^[0-9A-Za-z]{1,64}$/),
  expiresAt: z.iso.datetime(),
});

const startMessage = z.object({
  requestId: z.string().regex(/^[0-9A-Za-z]{1,64}$/),
  startAt: z.iso.datetime(),
});

function asObject(message: unknown): unknown {
  if (typeof message === 'string') {
    try {
      return JSON.parse(message) as unknown;
    } catch {
      return undefined;
    }
  }
  if (Buffer.isBuffer(message)) return asObject(message.toString('utf8'));
  return message;
}

export function parseRequestMessage(message: unknown): { requestId: string } | undefined {
  const r = requestMessage.safeParse(asObject(message));
  return r.success ? r.data : undefined;
}

export function parseExpiryMessage(message: unknown): { requestId: string; expiresAt: string } | undefined {
  const r = expiryMessage.safeParse(asObject(message));
  return r.success ? r.data : undefined;
}

const approvalDeadlineMessage = z.object({
  kind: z.literal('approval-deadline'),
  requestId: z.string().regex(/^[0-9A-Za-z]{1,64}$/),
  deadline: z.iso.datetime(),
});

/** A pending request's approval deadline, scheduled on the same queue as grant expiries (told apart by `kind`). */
export function parseApprovalDeadlineMessage(
  message: unknown,
): { requestId: string; deadline: string } | undefined {
  const r = approvalDeadlineMessage.safeParse(asObject(message));
  return r.success ? r.data : undefined;
}

export function parseStartMessage(message: unknown): { requestId: string; startAt: string } | undefined {
  const r = startMessage.safeParse(asObject(message));
  return r.success ? r.data : undefined;
}

const notificationMessage = z.object({
  target: z.string().min(1).max(64),
  attempt: z.number().int().min(1).max(100),
  notification: z
    .object({
      id: z.string().min(1),
      kind: z.enum(NOTIFICATION_KINDS),
      at: z.iso.datetime(),
    })
    .loose(),
});

/** A delivery queued by shared/usecases/notifyChannels.ts (its notification is ours: only its frame is checked). */
export function parseNotificationMessage(message: unknown): NotificationMessage | undefined {
  const r = notificationMessage.safeParse(asObject(message));
  return r.success ? r.data : undefined;
}
