/**
 * The emulator's public options and its fault-injection surface: what a test or the sandbox may ask of it.
 */

/** One queue of the emulated namespace. */
export interface EmulatedQueueOptions {
  /** Queue name; matched case-insensitively, as Service Bus does. */
  name: string;
  /** How long a peek-lock lasts before the message is redelivered. Default 30000. */
  lockDurationInMs?: number;
  /** Deliveries after which a message is dead-lettered with reason `MaxDeliveryCountExceeded`. Default 10. */
  maxDeliveryCount?: number;
  /** Drop messages whose `messageId` was sent within the history window (duplicateDetection.ts). Default false. */
  requiresDuplicateDetection?: boolean;
  /**
   * How long a message id is remembered. Default 600000 (Azure's 10 minutes). Azure accepts 20 s to 7 days; the
   * emulator takes any positive value, so that a test can see the window pass.
   */
  duplicateDetectionHistoryTimeWindowInMs?: number;
}

export interface ServiceBusEmulatorOptions {
  /** TCP port to listen on; 0 picks a free port. Default 0. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  queues: EmulatedQueueOptions[];
}

/** Faults a test can inject to see how the code under test copes with a misbehaving broker. */
export interface ServiceBusEmulatorFaults {
  /**
   * Silently discards scheduled messages on `queue` when they come due, as if the broker lost them.
   * Only messages whose decoded body satisfies `predicate` (all, if omitted) are dropped, at most `count`
   * of them (unlimited if omitted). The rule applies to messages already scheduled as well.
   */
  dropScheduled(queue: string, predicate?: (body: unknown) => boolean, count?: number): void;
  /** Messages enqueued on `queue` from now on become deliverable only `delayInMs` after enqueueing. */
  delayDelivery(queue: string, delayInMs: number): void;
  /** Removes every fault; messages held back by `delayDelivery` become deliverable at once. */
  clear(): void;
}
