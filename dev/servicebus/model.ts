/**
 * The namespace's state: its queues, each with an active entity and a dead-letter subqueue, the messages they
 * hold, their locks, the scheduled messages and the sequence numbers. Data and lookups only; what happens to a
 * message over time lives in delivery.ts, settlement.ts and scheduling.ts.
 */
import type { Message, Sender } from 'rhea';

import { messageIdOf } from './codec';
import { DuplicateDetectionHistory } from './duplicateDetection';
import type { EmulatedQueueOptions } from './types';

const DEFAULT_LOCK_DURATION_IN_MS = 30_000;
const DEFAULT_MAX_DELIVERY_COUNT = 10;
/** https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection#duplicate-detection-window-size */
const DEFAULT_DUPLICATE_DETECTION_WINDOW_IN_MS = 10 * 60_000;
/** Longer delays overflow Node's timers and fire at once; long waits are re-armed in steps. */
export const MAX_TIMER_DELAY_IN_MS = 2 ** 31 - 1;

const MANAGEMENT_SUFFIX = '/$management';
const DEAD_LETTER_SUFFIX = '/$deadletterqueue';

export interface StoredMessage {
  readonly sequenceNumber: bigint;
  readonly message: Message;
  readonly enqueuedTime: Date;
  /** Deliveries made so far; the header of the next delivery carries this value (previous attempts). */
  deliveryCount: number;
  /** Epoch ms before which the message is not handed out (the `delayDelivery` fault). */
  availableAt: number;
  lock: MessageLock | undefined;
}

export interface MessageLock {
  /** Lock token as the client prints it and sends it back in management requests. */
  readonly token: string;
  readonly entity: Entity;
  readonly stored: StoredMessage;
  lockedUntil: number;
  timer: NodeJS.Timeout | undefined;
}

export interface ScheduledMessage {
  readonly sequenceNumber: bigint;
  readonly message: Message;
  readonly scheduledEnqueueTime: Date;
}

export interface Consumer {
  readonly sender: Sender;
  readonly entity: Entity;
  readonly receiveAndDelete: boolean;
  drainRequested: boolean;
  /** Transfers handed to rhea this tick; rhea deducts them from the link credit only when it writes them. */
  unflushed: number;
}

export interface DropRule {
  readonly predicate: ((body: unknown) => boolean) | undefined;
  remaining: number;
}

/** A receivable message store: the queue itself or its dead-letter subqueue. */
export class Entity {
  readonly messages: StoredMessage[] = [];
  readonly consumers: Consumer[] = [];
  nextConsumer = 0;
  pumpScheduled = false;
  wakeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly queue: QueueState,
    readonly isDeadLetter: boolean,
  ) {}

  get path(): string {
    return this.isDeadLetter ? `${this.queue.name}/$DeadLetterQueue` : this.queue.name;
  }

  get maxDeliveryCount(): number {
    // Service Bus never dead-letters out of a dead-letter queue.
    return this.isDeadLetter ? Number.POSITIVE_INFINITY : this.queue.maxDeliveryCount;
  }
}

export class QueueState {
  readonly name: string;
  readonly lockDurationInMs: number;
  readonly maxDeliveryCount: number;
  readonly active: Entity;
  readonly deadLetter: Entity;
  readonly scheduled = new Map<bigint, ScheduledMessage>();
  /** One timer for the earliest due message, so messages due together are enqueued in sequence order. */
  schedulerTimer: NodeJS.Timeout | undefined;
  nextSequenceNumber = 1n;
  completed = 0;
  dropRules: DropRule[] = [];
  deliveryDelayInMs = 0;
  /** Present when the queue requires duplicate detection. */
  readonly duplicates: DuplicateDetectionHistory | undefined;

  constructor(options: EmulatedQueueOptions) {
    this.name = options.name;
    this.lockDurationInMs = options.lockDurationInMs ?? DEFAULT_LOCK_DURATION_IN_MS;
    this.maxDeliveryCount = options.maxDeliveryCount ?? DEFAULT_MAX_DELIVERY_COUNT;
    this.duplicates = options.requiresDuplicateDetection
      ? new DuplicateDetectionHistory(
          options.duplicateDetectionHistoryTimeWindowInMs ?? DEFAULT_DUPLICATE_DETECTION_WINDOW_IN_MS,
        )
      : undefined;
    this.active = new Entity(this, false);
    this.deadLetter = new Entity(this, true);
  }

  takeSequenceNumber(): bigint {
    return this.nextSequenceNumber++;
  }

  /** Whether the broker keeps a message just sent, or accepts and drops it as a duplicate. */
  admits(message: Message): boolean {
    const id = messageIdOf(message);
    return this.duplicates === undefined || id === undefined || this.duplicates.admit(id);
  }
}

/** The queues of the namespace, by case-insensitive name, and the entity an AMQP address names. */
export class Namespace {
  private readonly queues = new Map<string, QueueState>();

  constructor(queues: readonly EmulatedQueueOptions[]) {
    for (const queueOptions of queues) {
      const key = queueOptions.name.toLowerCase();
      if (this.queues.has(key)) throw new Error(`Queue '${queueOptions.name}' is declared twice.`);
      const lockDurationInMs = queueOptions.lockDurationInMs ?? DEFAULT_LOCK_DURATION_IN_MS;
      if (!(lockDurationInMs > 0 && lockDurationInMs <= MAX_TIMER_DELAY_IN_MS)) {
        throw new Error(`lockDurationInMs must be between 1 and ${MAX_TIMER_DELAY_IN_MS}.`);
      }
      if ((queueOptions.maxDeliveryCount ?? 1) < 1) throw new Error('maxDeliveryCount must be at least 1.');
      this.queues.set(key, new QueueState(queueOptions));
    }
  }

  allQueues(): IterableIterator<QueueState> {
    return this.queues.values();
  }

  /** Every receivable entity: each queue and its dead-letter subqueue. */
  *entities(): IterableIterator<Entity> {
    for (const queue of this.queues.values()) {
      yield queue.active;
      yield queue.deadLetter;
    }
  }

  requireQueue(name: string): QueueState {
    const queue = this.queues.get(name.toLowerCase());
    if (!queue) throw new Error(`The Service Bus emulator has no queue '${name}'.`);
    return queue;
  }

  /** `queue`, `queue/$DeadLetterQueue`, and either with `/$management`; case-insensitive, as Service Bus. */
  resolveAddress(address: string | undefined): { entity: Entity; management: boolean } | undefined {
    if (address === undefined) return undefined;
    let path = address.toLowerCase();
    const management = path.endsWith(MANAGEMENT_SUFFIX);
    if (management) path = path.slice(0, -MANAGEMENT_SUFFIX.length);
    const deadLetter = path.endsWith(DEAD_LETTER_SUFFIX);
    if (deadLetter) path = path.slice(0, -DEAD_LETTER_SUFFIX.length);
    const queue = this.queues.get(path);
    if (!queue) return undefined;
    return { entity: deadLetter ? queue.deadLetter : queue.active, management };
  }
}

/** Whether an address names an entity's management node (the client's request/response pair). */
export function isManagementAddress(address: string | undefined): boolean {
  return address?.toLowerCase().endsWith(MANAGEMENT_SUFFIX) ?? false;
}

export function removeFrom<T>(items: T[], item: T): void {
  const index = items.indexOf(item);
  if (index >= 0) items.splice(index, 1);
}
