/**
 * The one way a request changes status: a conditional write carrying its audit event, then the signals and chat
 * notifications that follow it. Every use case that moves a request goes through `transition`.
 */
import { ConcurrencyConflict } from '../domain/errors';
import type { AuditAction } from '../domain/auditActions';
import type { StoredRequest } from '../domain/ports';
import { emitAll, signalsOfTransition } from '../domain/signals';
import { assertTransition } from '../domain/state';
import type { AccessRequest, AuditEvent, RequestStatus } from '../domain/types';
import { writeAudited } from './auditOutbox';
import type { Deps } from './deps';
import { announceTransition } from './notifyChannels';
import type { AnnouncePorts } from './notifyChannels';

/** What moving a request needs: the conditional write with its event, and what follows it. */
export type TransitionPorts = Pick<Deps, 'requests' | 'audit' | 'clock' | 'log' | 'signals'> & AnnouncePorts;

/**
 * Moves a request to a new status with a conditional write that carries its audit event (see auditOutbox.ts).
 * Returns undefined (and writes nothing) when someone else moved it first.
 */
export async function transition(
  deps: TransitionPorts,
  current: StoredRequest,
  to: RequestStatus,
  changes: Partial<AccessRequest>,
  audit: {
    actor: string;
    actorId?: string;
    action: AuditAction;
    detail?: string;
    clientAddress?: string;
    expiresAt?: string;
  },
): Promise<StoredRequest | undefined> {
  assertTransition(current.value.status, to);
  const next: AccessRequest = {
    ...current.value,
    ...changes,
    status: to,
    updatedAt: deps.clock.now().toISOString(),
  };
  let written: StoredRequest;
  try {
    // The change and its event in one write; the event is appended right after (shared/usecases/auditOutbox.ts).
    written = await writeAudited(deps, current, next, {
      actor: audit.actor,
      ...(audit.actorId ? { actorId: audit.actorId } : {}),
      action: audit.action,
      requestId: next.id,
      vm: next.vmId,
      ports: next.ports,
      sourcePrefix: next.sourcePrefix,
      expiresAt: audit.expiresAt,
      detail: audit.detail,
      clientAddress: audit.clientAddress,
    });
  } catch (err) {
    if (err instanceof ConcurrencyConflict) return undefined;
    throw err;
  }
  deps.log.info(audit.action, { requestId: next.id, status: to });
  // Operators' signals and chat notifications: after the write, never able to undo or fail it.
  emitAll(deps.signals, signalsOfTransition(current.value.status, written.value, audit.actor));
  await announceTransition(deps, written.value, audit.actor);
  return written;
}

/** The subject of a request's audit events: the request, its VM, ports and source. */
export function grantSubject(
  r: AccessRequest,
): Pick<AuditEvent, 'requestId' | 'vm' | 'ports' | 'sourcePrefix'> {
  return { requestId: r.id, vm: r.vmId, ports: r.ports, sourcePrefix: r.sourcePrefix };
}
