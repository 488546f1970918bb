/**
 * Cancelling scheduled messages without ever cancelling the live one (shared/domain/scheduledMessages.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TransientFailure } from '../domain/errors';
import type { StoredRequest } from '../domain/ports';
import { isSuperseded } from '../domain/scheduledMessages';
import type { ScheduledRef } from '../domain/scheduledMessages';
import type { AccessRequest } from '../domain/types';
import type { Deps } from './deps';

/** A handler waits this long, per delivery, for the step that scheduled its message to record it. */
const RECORDING_WAIT_IN_MS = 20_000;
const RECORDING_POLL_IN_MS = 250;

/** What cancelling a request's scheduled messages needs. */
export type CancelPorts = Pick<Deps, 'requests' | 'scheduledMessages' | 'log'>;

/**
 * Reads the request once and cancels each of `messages` that can no longer be the live one of `purpose`; the
 * others are left for whoever records the purpose next. Returns the sequence numbers cancelled. Never throws:
 * a message left scheduled by a failure here is ignored by its handler when it comes due.
 */
export async function cancelSuperseded(
  deps: CancelPorts,
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
  deps: CancelPorts,
  purpose: 'expire' | 'start',
  requestId: string,
  sequenceNumber: string,
): Promise<void> {
  try {
    await deps.scheduledMessages.cancel(purpose, sequenceNumber);
  } catch (err) {
    deps.log.warn(`${purpose === 'expire' ? 'expiry' : 'start'}.cancel-failed`, {
      requestId,
      sequenceNumber,
      error: String(err),
    });
  }
}

/**
 * A message can come due while the step that scheduled it is still recording it: a grant shorter than its own apply
 * (ARM writes take seconds), a start moments after the request. Its handler then finds the request one step behind,
 * and ignoring the message as stale would leave nothing to act at its time until the reconciler's grace. So the
 * handler reads the request again while `stillRecording` holds (or the step's audit event still waits in the row),
 * for up to 20 seconds, and returns it as it then is (or undefined if it is gone). If the step is still not done, it throws `TransientFailure`: the host abandons the
 * message and Service Bus delivers it again, up to the queue's max delivery count; past that the reconciler acts.
 */
export async function awaitRecording(
  deps: Pick<Deps, 'requests' | 'log'>,
  requestId: string,
  stillRecording: (request: AccessRequest) => boolean,
): Promise<StoredRequest | undefined> {
  deps.log.info('schedule.awaiting-recording', { requestId });
  for (let waited = 0; waited < RECORDING_WAIT_IN_MS; waited += RECORDING_POLL_IN_MS) {
    await sleep(RECORDING_POLL_IN_MS);
    const found = await deps.requests.get(requestId);
    // Recorded, and its writer done with the row: the write that clears the step's audit event from it would
    // otherwise make the handler's own conditional write fail a moment later.
    if (!found || (!stillRecording(found.value) && !found.pendingAudit)) return found;
  }
  throw new TransientFailure(`request ${requestId} is still being scheduled; its message comes again`);
}
