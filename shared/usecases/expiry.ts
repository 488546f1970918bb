/**
 * A grant's end at its expiry (Service Bus jit-expirations): close its rules, then mark it expired.
 */
import type { StoredRequest } from '../domain/ports';
import type { ExpiryMessage } from '../domain/scheduledMessages';
import type { AccessRequest } from '../domain/types';
import { notifyRequester } from './notify';
import { awaitRecording } from './scheduledMessages';
import { removeRules } from './teardown';
import { grantSubject, transition } from './transition';
import type { TeardownPorts } from './teardown';

/** What a grant's expiry needs. */
export type ExpiryPorts = TeardownPorts;

/**
 * The `expirations` function (Service Bus jit-expirations): close the rules and mark the request expired. A message whose
 * expiry no longer matches the request (it was extended or revoked meanwhile) is ignored. The rules go first,
 * so the request never says `expired` while its hole is still open.
 */
export async function expireGrant(
  deps: ExpiryPorts,
  message: ExpiryMessage,
  actor = 'system:expiry',
): Promise<void> {
  const applying = (r: AccessRequest) => r.status === 'approved' && r.expiresAt === message.expiresAt;
  let found = await deps.requests.get(message.requestId);
  // Due while the apply that scheduled it is still writing the rules (a grant shorter than its apply).
  if (found && applying(found.value)) found = await awaitRecording(deps, message.requestId, applying);
  if (!found) return void deps.log.warn('expire.unknown-request', { requestId: message.requestId });
  const r = found.value;
  if (r.status !== 'active' || r.expiresAt !== message.expiresAt) {
    deps.log.info('expire.stale-message', { requestId: r.id, status: r.status });
    return;
  }
  const removed = await removeRules(deps, r.id, actor, grantSubject(r));
  const closed = `closed ${removed.map((g) => `${g.ruleName} in ${g.nsgId}`).join('; ')}`;
  if (await markExpired(deps, found, actor, closed)) return;
  await endIfExtendedWhileClosing(deps, r.id, actor);
}

/**
 * Marks live access whose rules are gone `expired` (the trail's `detail` says how it ended) and tells the requester.
 * Returns undefined, having done nothing, when someone else moved the request first.
 */
export async function markExpired(
  deps: ExpiryPorts,
  found: StoredRequest,
  actor: string,
  detail: string,
): Promise<StoredRequest | undefined> {
  const moved = await transition(
    deps,
    found,
    'expired',
    { endedAt: deps.clock.now().toISOString() },
    { actor, action: 'grant.expired', detail },
  );
  if (moved) await notifyRequester(deps, moved.value);
  return moved;
}

/**
 * Our mark lost: someone moved the request while the rules were being removed. A revoke or the reconciler ended it
 * (nothing to do), or an extension, asked just before closing began, was recorded meanwhile: it then says `active`
 * until a later expiry over rules that are gone, and with nothing on the live index nothing would ever correct it.
 * Access did end, so the record says so, and the requester is told.
 */
async function endIfExtendedWhileClosing(deps: ExpiryPorts, id: string, actor: string): Promise<void> {
  const now = await deps.requests.get(id);
  if (now?.value.status !== 'active') return;
  const rows = await deps.grants.list(id);
  if (rows.some((g) => g.state !== 'removed' && g.state !== 'neutralised')) return;
  await markExpired(
    deps,
    now,
    actor,
    `its rules were removed as closing began; an extension to ${now.value.expiresAt} was recorded meanwhile, too late`,
  );
}
