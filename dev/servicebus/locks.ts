/**
 * Peek-lock locks: their tokens, their expiry timers and renewal. A lock that expires hands its message back
 * through the callback the emulator wires to settlement (release, or dead-letter after `maxDeliveryCount`).
 */
import { randomBytes } from 'node:crypto';
import { uuid_to_string } from 'rhea';
import type { Delivery } from 'rhea';

import { Condition, ManagementError, lockLostError } from './errors';
import { guarded } from './log';
import type { Entity, MessageLock, StoredMessage } from './model';

export class LockTable {
  /** Live locks by token, for renewal and settlement over the management link. */
  private readonly locks = new Map<string, MessageLock>();
  /** Which lock a delivery on a consumer link carries, to settle it when the client disposes it. */
  private readonly deliveryLocks = new WeakMap<Delivery, MessageLock>();

  constructor(private readonly onExpired: (lock: MessageLock) => void) {}

  /** Locks a message for one delivery; returns the lock and the 16 bytes of its token. */
  lock(entity: Entity, stored: StoredMessage): { lock: MessageLock; tokenBytes: Buffer } {
    const tokenBytes = randomBytes(16);
    const lock: MessageLock = {
      token: uuid_to_string(tokenBytes),
      entity,
      stored,
      lockedUntil: Date.now() + entity.queue.lockDurationInMs,
      timer: undefined,
    };
    stored.lock = lock;
    this.locks.set(lock.token, lock);
    this.armExpiry(lock);
    return { lock, tokenBytes };
  }

  /** Remembers which lock a delivery carries, for when the client settles it on the receiving link. */
  bindDelivery(delivery: Delivery, lock: MessageLock): void {
    this.deliveryLocks.set(delivery, lock);
  }

  /** The lock a delivery carried, forgotten once asked for: a delivery is settled once. */
  takeDeliveryLock(delivery: Delivery): MessageLock | undefined {
    const lock = this.deliveryLocks.get(delivery);
    if (lock) this.deliveryLocks.delete(delivery);
    return lock;
  }

  /** The live lock a management request names, or the `MessageLockLost` error Service Bus answers with. */
  requireCurrent(token: string): MessageLock {
    const lock = this.locks.get(token);
    if (!this.isCurrent(lock))
      throw new ManagementError(410, Condition.lockLost, lockLostError().description ?? '');
    return lock;
  }

  renew(token: string): Date {
    const lock = this.requireCurrent(token);
    lock.lockedUntil = Date.now() + lock.entity.queue.lockDurationInMs;
    this.armExpiry(lock);
    return new Date(lock.lockedUntil);
  }

  isCurrent(lock: MessageLock | undefined): lock is MessageLock {
    return lock !== undefined && lock.stored.lock === lock && this.locks.get(lock.token) === lock;
  }

  end(lock: MessageLock): void {
    clearTimeout(lock.timer);
    lock.timer = undefined;
    this.locks.delete(lock.token);
    lock.stored.lock = undefined;
  }

  clearTimers(): void {
    for (const lock of this.locks.values()) clearTimeout(lock.timer);
  }

  private armExpiry(lock: MessageLock): void {
    clearTimeout(lock.timer);
    lock.timer = setTimeout(
      () => guarded('lock_expiry_failed', () => this.onExpired(lock)),
      Math.max(lock.lockedUntil - Date.now(), 0),
    );
    lock.timer.unref();
  }
}
