/**
 * Settlement of a locked message, over the receiving link (the delivery's outcome) or over the management
 * link (`com.microsoft:update-disposition`, which the client uses once the receiving link is gone): complete,
 * abandon, dead-letter, and what lock expiry does (redeliver, or dead-letter after `maxDeliveryCount`).
 */
import type { AmqpError, Delivery } from 'rhea';

import { applyProperties, asRecord, compareBigInt } from './codec';
import type { Dispatcher } from './delivery';
import { Condition, ManagementError, lockLostError } from './errors';
import type { LockTable } from './locks';
import { removeFrom } from './model';
import type { Entity, MessageLock, StoredMessage } from './model';
import { outcomes, settle } from './rhea';

export type DeliveryOutcome = 'accepted' | 'rejected' | 'modified' | 'released';

export class Settlement {
  constructor(
    private readonly locks: LockTable,
    private readonly dispatcher: Dispatcher,
  ) {}

  /** The client disposed of a delivery on its receiving link. */
  onDisposition(delivery: Delivery, outcome: DeliveryOutcome): void {
    const lock = this.locks.takeDeliveryLock(delivery);
    if (!lock) {
      // Settlement of something we did not lock (a reply, or a pre-settled delivery); nothing to do.
      if (!delivery.settled) delivery.update(true);
      return;
    }
    if (!this.locks.isCurrent(lock)) {
      settle(delivery, outcomes.rejected({ error: lockLostError() }));
      return;
    }
    const state = (delivery.remote_state ?? {}) as {
      undeliverable_here?: boolean;
      message_annotations?: unknown;
      error?: AmqpError;
    };
    switch (outcome) {
      case 'accepted':
        this.complete(lock);
        settle(delivery, outcomes.accepted());
        return;
      case 'released':
        this.releaseLock(lock);
        settle(delivery, outcomes.released());
        return;
      case 'modified':
        if (state.undeliverable_here) {
          // defer(); the lock is kept so the message is redelivered when it expires, as if never settled.
          settle(
            delivery,
            outcomes.rejected({
              error: {
                condition: Condition.notImplemented,
                description: 'The Service Bus emulator does not support defer.',
              },
            }),
          );
          return;
        }
        this.releaseLock(lock, state.message_annotations);
        settle(delivery, outcomes.modified({ undeliverable_here: false }));
        return;
      case 'rejected': {
        const info = asRecord(state.error?.info);
        this.deadLetterLocked(lock, info.DeadLetterReason, info.DeadLetterErrorDescription, info);
        // Echoing the client's error would make it report the dead-lettering as failed.
        settle(delivery, outcomes.rejected({}));
        return;
      }
    }
  }

  /** Settlement over the management link, which the client uses once the receiving link is gone. */
  updateDisposition(token: string, body: Record<string, unknown>): void {
    const lock = this.locks.requireCurrent(token);
    switch (body['disposition-status']) {
      case 'completed':
        this.complete(lock);
        return;
      case 'abandoned':
        this.releaseLock(lock, body['properties-to-modify']);
        return;
      case 'suspended':
        this.deadLetterLocked(
          lock,
          body['deadletter-reason'],
          body['deadletter-description'],
          body['properties-to-modify'],
        );
        return;
      default:
        throw new ManagementError(
          501,
          Condition.notImplemented,
          `The Service Bus emulator does not support disposition '${String(body['disposition-status'])}'.`,
        );
    }
  }

  /** Abandon or lock expiry: the message becomes available again unless it has used up its deliveries. */
  releaseLock(lock: MessageLock, propertiesToModify?: unknown): void {
    if (!this.locks.isCurrent(lock)) return;
    this.locks.end(lock);
    const { entity, stored } = lock;
    applyProperties(stored.message, propertiesToModify);
    if (stored.deliveryCount >= entity.maxDeliveryCount) {
      this.deadLetter(
        entity,
        stored,
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${entity.maxDeliveryCount} delivery attempts.`,
      );
    } else {
      this.dispatcher.schedulePump(entity);
    }
  }

  private complete(lock: MessageLock): void {
    this.locks.end(lock);
    removeFrom(lock.entity.messages, lock.stored);
    if (!lock.entity.isDeadLetter) lock.entity.queue.completed += 1;
  }

  private deadLetterLocked(
    lock: MessageLock,
    reason: unknown,
    description: unknown,
    properties: unknown,
  ): void {
    this.locks.end(lock);
    const extra = { ...asRecord(properties) };
    delete extra.DeadLetterReason;
    delete extra.DeadLetterErrorDescription;
    applyProperties(lock.stored.message, extra);
    if (lock.entity.isDeadLetter) {
      // Dead-lettering from the dead-letter queue leaves the message there; Service Bus has nowhere further.
      this.dispatcher.schedulePump(lock.entity);
      return;
    }
    this.deadLetter(
      lock.entity,
      lock.stored,
      typeof reason === 'string' ? reason : undefined,
      typeof description === 'string' ? description : undefined,
    );
  }

  private deadLetter(entity: Entity, stored: StoredMessage, reason?: string, description?: string): void {
    removeFrom(entity.messages, stored);
    const properties: Record<string, unknown> = { ...(stored.message.application_properties ?? {}) };
    if (reason !== undefined) properties.DeadLetterReason = reason;
    if (description !== undefined) properties.DeadLetterErrorDescription = description;
    stored.message.application_properties = properties;
    const target = entity.queue.deadLetter;
    target.messages.push({ ...stored, availableAt: 0, lock: undefined });
    target.messages.sort((a, b) => compareBigInt(a.sequenceNumber, b.sequenceNumber));
    this.dispatcher.schedulePump(target);
  }
}
