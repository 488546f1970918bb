/**
 * Cancelling scheduled messages without ever cancelling the live one (shared/domain/scheduledMessages.ts).
 */
import { isSuperseded } from '../domain/scheduledMessages';
import type { ScheduledRef } from '../domain/scheduledMessages';
import type { Deps } from './deps';

type CancelDeps = Pick<Deps, 'requests' | 'scheduler' | 'starts' | 'log'>;

/**
 * Reads the request once and cancels each of `messages` that can no longer be the live one of `purpose`; the
 * others are left for whoever records the purpose next. Returns the sequence numbers cancelled. Never throws:
 * a message left scheduled by a failure here is ignored by its handler when it comes due.
 */
export async function cancelSuperseded(
  deps: CancelDeps,
  purpose: 'expire' | 'start',
  requestId: string,
  messages: readonly ScheduledRef[],
): Promise<string[]> {
  if (messages.length === 0) return [];
  let request;
  try {
    request = (await deps.requests.get(requestId))?.value;
  } catch (err) {
    deps.log.warn('schedule.cancel-skipped', { requestId, purpose, error: String(err) });
    return [];
  }
  const cancelled: string[] = [];
  for (const m of messages) {
    if (cancelled.includes(m.sequenceNumber) || !isSuperseded(request, purpose, m)) continue;
    await cancelQuietly(deps, purpose, requestId, m.sequenceNumber);
    cancelled.push(m.sequenceNumber);
  }
  return cancelled;
}

/**
 * Cancels a scheduled message; a failure is logged, not thrown. The request no longer matches the message, so
 * if it does arrive, its handler ignores it.
 */
export async function cancelQuietly(
  deps: CancelDeps,
  purpose: 'expire' | 'start',
  requestId: string,
  sequenceNumber: string,
): Promise<void> {
  try {
    if (purpose === 'expire') await deps.scheduler.cancelExpiry(sequenceNumber);
    else await deps.starts.cancelStart(sequenceNumber);
  } catch (err) {
    deps.log.warn(`${purpose === 'expire' ? 'expiry' : 'start'}.cancel-failed`, {
      requestId,
      sequenceNumber,
      error: String(err),
    });
  }
}
