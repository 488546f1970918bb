/**
 * Delivery to consumers: a message entering a queue, the pump that hands available messages to receiving
 * links within the credit each client granted (round-robin among competing receivers), peek-lock versus
 * receive-and-delete, and the answer to a drain.
 */
import type { Delivery, Message, Sender } from 'rhea';

import { toWire } from './annotations';
import { dotNetGuidBytes } from './codec';
import { guarded } from './log';
import type { LockTable } from './locks';
import { MAX_TIMER_DELAY_IN_MS, removeFrom } from './model';
import type { Consumer, Entity, Namespace, QueueState, StoredMessage } from './model';
import { creditOf } from './rhea';

export class Dispatcher {
  constructor(
    private readonly namespace: Namespace,
    private readonly locks: LockTable,
    private readonly isStopping: () => boolean,
  ) {}

  /** A message becomes part of the queue, deliverable after the `delayDelivery` fault's delay if one is set. */
  enqueue(queue: QueueState, sequenceNumber: bigint, message: Message): void {
    const now = Date.now();
    queue.active.messages.push({
      sequenceNumber,
      message,
      enqueuedTime: new Date(now),
      deliveryCount: 0,
      availableAt: now + queue.deliveryDelayInMs,
      lock: undefined,
    });
    this.schedulePump(queue.active);
  }

  addConsumer(consumer: Consumer): void {
    consumer.entity.consumers.push(consumer);
    this.schedulePump(consumer.entity);
  }

  consumerOf(sender: Sender): Consumer | undefined {
    for (const entity of this.namespace.entities()) {
      const consumer = entity.consumers.find((candidate) => candidate.sender === sender);
      if (consumer) return consumer;
    }
    return undefined;
  }

  dropConsumers(predicate: (consumer: Consumer) => boolean): void {
    for (const entity of this.namespace.entities()) {
      for (let i = entity.consumers.length - 1; i >= 0; i--) {
        const consumer = entity.consumers[i];
        if (consumer && predicate(consumer)) entity.consumers.splice(i, 1);
      }
    }
  }

  onCredit(sender: Sender, draining: boolean): void {
    const consumer = this.consumerOf(sender);
    if (!consumer) return;
    if (!draining) {
      this.schedulePump(consumer.entity);
      return;
    }
    // A drain must be answered from inside this event: rhea writes the drained flow only while it is
    // processing the incoming flow frame, and receiveMessages() otherwise waits for the drain to time out.
    consumer.drainRequested = true;
    this.pump(consumer.entity);
  }

  schedulePump(entity: Entity): void {
    if (entity.pumpScheduled || this.isStopping()) return;
    entity.pumpScheduled = true;
    // Coalesces the many triggers of one turn (sends, settlements, flows) into a single pass.
    setImmediate(() => {
      entity.pumpScheduled = false;
      guarded('pump_failed', () => this.pump(entity));
    });
  }

  private pump(entity: Entity): void {
    if (this.isStopping()) return;
    const now = Date.now();
    const live = entity.consumers.filter((consumer) => consumer.sender.is_open());
    const budgets = new Map<Consumer, number>(
      live.map((consumer) => [
        consumer,
        consumer.sender.sendable() ? creditOf(consumer.sender) - consumer.unflushed : 0,
      ]),
    );
    let nextWake = Number.POSITIVE_INFINITY;
    for (const stored of [...entity.messages]) {
      if (stored.lock) continue;
      if (stored.availableAt > now) {
        nextWake = Math.min(nextWake, stored.availableAt);
        continue;
      }
      const consumer = this.nextConsumerWithCredit(entity, live, budgets);
      if (!consumer) break;
      budgets.set(consumer, (budgets.get(consumer) ?? 0) - 1);
      this.deliver(consumer, stored);
    }
    for (const consumer of live) {
      if (!consumer.drainRequested) continue;
      // Everything deliverable is sent: hand back the remaining credit.
      consumer.drainRequested = false;
      consumer.sender.set_drained(true);
    }
    clearTimeout(entity.wakeTimer);
    entity.wakeTimer = undefined;
    if (Number.isFinite(nextWake)) {
      entity.wakeTimer = setTimeout(
        () => this.schedulePump(entity),
        Math.min(Math.max(nextWake - now, 0), MAX_TIMER_DELAY_IN_MS),
      );
      entity.wakeTimer.unref();
    }
  }

  /** Round-robin over consumers with credit left, so competing receivers share the queue. */
  private nextConsumerWithCredit(
    entity: Entity,
    live: readonly Consumer[],
    budgets: ReadonlyMap<Consumer, number>,
  ): Consumer | undefined {
    for (let step = 0; step < live.length; step++) {
      const index = (entity.nextConsumer + step) % live.length;
      const consumer = live[index];
      if (consumer && (budgets.get(consumer) ?? 0) > 0) {
        entity.nextConsumer = index + 1;
        return consumer;
      }
    }
    return undefined;
  }

  /**
   * Hands a transfer to rhea. rhea deducts credit only when it writes the frame, on a process.nextTick it
   * queues on the first send of a tick; resetting our count on a nextTick queued after it keeps
   * `credit - unflushed` exact, so a pump never sends more than the client granted.
   */
  private send(consumer: Consumer, message: Message, tag?: Buffer): Delivery {
    const delivery = consumer.sender.send(message, tag);
    if (consumer.unflushed === 0) {
      process.nextTick(() => {
        consumer.unflushed = 0;
      });
    }
    consumer.unflushed += 1;
    return delivery;
  }

  private deliver(consumer: Consumer, stored: StoredMessage): void {
    const entity = consumer.entity;
    const previousAttempts = stored.deliveryCount;
    stored.deliveryCount += 1;
    if (consumer.receiveAndDelete) {
      removeFrom(entity.messages, stored);
      if (!entity.isDeadLetter) entity.queue.completed += 1;
      // The link was attached with snd_settle_mode "settled", so rhea sends this delivery pre-settled.
      this.send(consumer, toWire(stored, { deliveryCount: previousAttempts }));
      return;
    }
    const { lock, tokenBytes } = this.locks.lock(entity, stored);
    // The client shows the delivery tag in .NET GUID byte order but sends the token back in RFC 4122 order.
    // Tagging with the swapped bytes makes both views equal the token we key locks by.
    const delivery = this.send(
      consumer,
      toWire(stored, { deliveryCount: previousAttempts, lockedUntil: new Date(lock.lockedUntil) }),
      dotNetGuidBytes(tokenBytes),
    );
    this.locks.bindDelivery(delivery, lock);
  }
}
