/**
 * A grant's end at its expiry (Service Bus jit-expirations): close its rules, then mark it expired.
 */
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
  const moved = await transition(
    deps,
    found,
    'expired',
    { endedAt: deps.clock.now().toISOString() },
    {
      actor,
      action: 'grant.expired',
      detail: `closed ${removed.map((g) => `${g.ruleName} in ${g.nsgId}`).join('; ')}`,
    },
  );
  if (moved) await notifyRequester(deps, moved.value);
}
