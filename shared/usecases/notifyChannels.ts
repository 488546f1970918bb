/**
 * Chat and webhook notifications, off the grant path. `announce` queues one delivery per target that wants the
 * notification (jit-notifications) and never throws: a transition that happened stays happened, whatever Teams,
 * Slack or a receiver do — like the requester's mail (notify.ts), a failure to queue is logged, nothing more.
 * `deliverNotification` (the queue's function) makes one attempt; a failure a retry may fix is queued again with a
 * growing delay, and after the last attempt, or at once for an answer no retry changes (a 4xx), the delivery goes
 * to jit-notifications-poison with the reason, and `jit.notification.dead-lettered` is emitted.
 */
import { ulid } from 'ulid';
import {
  isRetryableStatus,
  kindOfTransition,
  notifiedRequest,
  retryDelayInSeconds,
  targetsFor,
} from '../domain/notifications';
import type { Notification, NotificationMessage } from '../domain/notifications';
import type { AccessRequest } from '../domain/types';
import type { Deps } from './deps';

/** What queueing a notification needs. */
export type AnnouncePorts = Pick<Deps, 'channels' | 'log' | 'clock'>;

/** What one delivery attempt needs. */
export type DeliveryPorts = Pick<Deps, 'channels' | 'log' | 'clock' | 'signals'>;

/** Queues a notification for every target that wants it. Never throws. */
export async function announce(
  deps: AnnouncePorts,
  notification: Omit<Notification, 'id' | 'at'>,
): Promise<void> {
  const channels = deps.channels;
  const n: Notification = { id: ulid(), at: deps.clock.now().toISOString(), ...notification };
  await Promise.all(
    targetsFor(channels.targets, n).map(async (t) => {
      try {
        await channels.queue.send({ target: t.name, attempt: 1, notification: n });
      } catch (err) {
        deps.log.warn('notify.enqueue-failed', {
          requestId: n.request?.id,
          target: t.name,
          kind: n.kind,
          error: String((err as Error)?.message ?? err),
        });
      }
    }),
  );
}

/** The notification a request's move makes, if any (approval needed is announced by the approval flow). */
export async function announceTransition(
  deps: AnnouncePorts,
  after: AccessRequest,
  actor: string,
): Promise<void> {
  const kind = kindOfTransition(after);
  if (kind) await announce(deps, { kind, actor, request: notifiedRequest(after) });
}

/** What became of one attempt. */
export type DeliveryOutcome = 'delivered' | 'retrying' | 'dead-lettered' | 'dropped';

/** `deliverNotification` (queue jit-notifications): one attempt at one delivery. */
export async function deliverNotification(
  deps: DeliveryPorts,
  message: NotificationMessage,
): Promise<DeliveryOutcome> {
  const channels = deps.channels;
  const target = channels.targets.find((t) => t.name === message.target);
  const n = message.notification;
  const fields = { requestId: n.request?.id, target: message.target, kind: n.kind, attempt: message.attempt };
  if (!target) {
    // Its target was removed from the configuration since: nobody to deliver to.
    deps.log.warn('notify.unknown-target', fields);
    return 'dropped';
  }
  const { body, headers } = channels.compose.delivery(
    target,
    n,
    Math.floor(deps.clock.now().getTime() / 1000),
  );
  let status: number | undefined;
  let error: string;
  try {
    const res = await channels.http.post(target.url, body, headers);
    status = res.status;
    if (status >= 200 && status < 300) {
      deps.log.info('notify.delivered', { ...fields, status });
      return 'delivered';
    }
    error = `${target.type} answered ${status}${res.body ? `: ${res.body.slice(0, 200)}` : ''}`;
  } catch (err) {
    // The URL is a secret: the error names the target, never the address.
    error = `${target.type} unreachable: ${String((err as Error)?.name ?? err)}`;
  }
  if (isRetryableStatus(status) && message.attempt < channels.maxAttempts) {
    const delay = retryDelayInSeconds(message.attempt + 1, channels.firstRetryDelayInSeconds);
    await channels.queue.send({ ...message, attempt: message.attempt + 1 }, delay);
    deps.log.warn('notify.retry', { ...fields, status, error, delayInSeconds: delay });
    return 'retrying';
  }
  await channels.queue.deadLetter(message, error);
  deps.signals.event('jit.notification.dead-lettered', {
    target: target.name,
    targetType: target.type,
    kind: n.kind,
    requestId: n.request?.id,
    attempts: message.attempt,
    error,
  });
  deps.signals.add('jit.notifications.dead_lettered', 1, { targetType: target.type });
  deps.log.error('notify.dead-lettered', { ...fields, status, error });
  return 'dead-lettered';
}
