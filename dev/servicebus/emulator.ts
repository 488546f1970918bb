/**
 * A local Service Bus namespace that speaks AMQP 1.0 to the real `@azure/service-bus` client.
 *
 * Microsoft's emulator needs Docker, which the sandbox and CI do not have, so tests and the local
 * sandbox run this instead. It implements queues only (no topics, sessions, deferral or TTL) with the semantics
 * the project relies on: peek-lock with lock expiry and redelivery, `maxDeliveryCount` then dead-lettering,
 * scheduled messages and their cancellation, and duplicate detection on the queues that ask for it
 * (duplicateDetection.ts says exactly what Azure does and where that is written down).
 *
 * Two behaviours of scheduled messages that are easy to be kind about, and are not:
 * - A scheduled message dropped as a duplicate still answers with a sequence number, which names nothing.
 * - A scheduled message gets a new sequence number when it comes due: the number `scheduleMessages` returned
 *   is "only valid while the message is in this state. As the message transitions to the active state, the
 *   message is appended to the queue as if had been enqueued at the current instant, which includes assigning a
 *   new SequenceNumber" (https://learn.microsoft.com/azure/service-bus-messaging/message-sequencing#scheduled-messages).
 *
 * Wire details that the client depends on and that are easy to get wrong are explained where they are
 * handled; the notes in the repository's shared notes describe how each was found.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo, Server, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  create_container,
  message as amqpMessage,
  string_to_uuid,
  types as amqpTypes,
  uuid_to_string,
} from 'rhea';
import { DuplicateDetectionHistory } from './duplicateDetection';
import type {
  AmqpError,
  Connection,
  Container,
  Delivery,
  EventContext,
  Message,
  Receiver,
  Sender,
} from 'rhea';

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

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_LOCK_DURATION_IN_MS = 30_000;
const DEFAULT_MAX_DELIVERY_COUNT = 10;
/** https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection#duplicate-detection-window-size */
const DEFAULT_DUPLICATE_DETECTION_WINDOW_IN_MS = 10 * 60_000;
/** Standard tier's limit; the client sizes batches from what the broker announces on the link. */
const MAX_MESSAGE_SIZE_IN_BYTES = 256 * 1024;
/** Longer delays overflow Node's timers and fire at once; long waits are re-armed in steps. */
const MAX_TIMER_DELAY_IN_MS = 2 ** 31 - 1;

/** How long stop() waits for clients to acknowledge the close before cutting their sockets. */
const SHUTDOWN_GRACE_IN_MS = 500;

const CBS_ADDRESS = '$cbs';
const MANAGEMENT_SUFFIX = '/$management';
const DEAD_LETTER_SUFFIX = '/$deadletterqueue';
/** Message format of a batch: a message whose data sections are each an encoded message. */
const BATCH_MESSAGE_FORMAT = 0x80013700;
const AMQP_LONG_TYPECODE = 0x81;
const DATA_SECTION_TYPECODE = 0x75;
const SESSION_FILTER = 'com.microsoft:session-filter';

const Annotation = {
  sequenceNumber: 'x-opt-sequence-number',
  enqueuedTime: 'x-opt-enqueued-time',
  lockedUntil: 'x-opt-locked-until',
  scheduledEnqueueTime: 'x-opt-scheduled-enqueue-time',
  messageState: 'x-opt-message-state',
} as const;

/** `x-opt-message-state` of a scheduled message; the client reports it as `state: 'scheduled'`. */
const SCHEDULED_MESSAGE_STATE = 2;

const Condition = {
  notFound: 'amqp:not-found',
  notAllowed: 'amqp:not-allowed',
  notImplemented: 'amqp:not-implemented',
  invalidField: 'amqp:invalid-field',
  internalError: 'amqp:internal-error',
  lockLost: 'com.microsoft:message-lock-lost',
} as const;

const Operation = {
  putToken: 'put-token',
  scheduleMessage: 'com.microsoft:schedule-message',
  cancelScheduledMessage: 'com.microsoft:cancel-scheduled-message',
  renewLock: 'com.microsoft:renew-lock',
  peekMessage: 'com.microsoft:peek-message',
  updateDisposition: 'com.microsoft:update-disposition',
} as const;

// ---------------------------------------------------------------------------------------------------
// State

interface StoredMessage {
  readonly sequenceNumber: bigint;
  readonly message: Message;
  readonly enqueuedTime: Date;
  /** Deliveries made so far; the header of the next delivery carries this value (previous attempts). */
  deliveryCount: number;
  /** Epoch ms before which the message is not handed out (the `delayDelivery` fault). */
  availableAt: number;
  lock: MessageLock | undefined;
}

interface MessageLock {
  /** Lock token as the client prints it and sends it back in management requests. */
  readonly token: string;
  readonly entity: Entity;
  readonly stored: StoredMessage;
  lockedUntil: number;
  timer: NodeJS.Timeout | undefined;
}

interface ScheduledMessage {
  readonly sequenceNumber: bigint;
  readonly message: Message;
  readonly scheduledEnqueueTime: Date;
}

interface Consumer {
  readonly sender: Sender;
  readonly entity: Entity;
  readonly receiveAndDelete: boolean;
  drainRequested: boolean;
  /** Transfers handed to rhea this tick; rhea deducts them from the link credit only when it writes them. */
  unflushed: number;
}

interface DropRule {
  readonly predicate: ((body: unknown) => boolean) | undefined;
  remaining: number;
}

/** A receivable message store: the queue itself or its dead-letter subqueue. */
class Entity {
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

class QueueState {
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

type ReceiverRole =
  | { readonly kind: 'cbs' }
  | { readonly kind: 'management'; readonly entity: Entity }
  | { readonly kind: 'producer'; readonly queue: QueueState };

/** A management request that fails with a status the client maps to a typed error. */
class ManagementError extends Error {
  constructor(
    readonly statusCode: number,
    readonly condition: string,
    description: string,
  ) {
    super(description);
    this.name = 'ManagementError';
  }
}

// rhea's typings omit the outcome constructors and the local attach frame; these are the few parts used.
interface Outcome {
  described(): unknown;
}
interface OutcomeFactory {
  accepted(): Outcome;
  rejected(fields: { error?: AmqpError }): Outcome;
  modified(fields: { undeliverable_here?: boolean; delivery_failed?: boolean }): Outcome;
  released(): Outcome;
}
const outcomes = amqpMessage as unknown as OutcomeFactory;

interface LocalAttach {
  source?: unknown;
  target?: unknown;
  snd_settle_mode?: number;
  rcv_settle_mode?: number;
  max_message_size?: number;
}
function localAttach(link: Sender | Receiver): LocalAttach {
  return (link as unknown as { local: { attach: LocalAttach } }).local.attach;
}
/** Credit rhea has not yet consumed; it is decremented only when transfers are written. */
function creditOf(sender: Sender): number {
  return (sender as unknown as { credit: number }).credit;
}
/** rhea declares two Message types; the decoder's lacks the index signature the encoder takes. */
function decodeMessage(bytes: Buffer): Message {
  return amqpMessage.decode(bytes) as unknown as Message;
}

// ---------------------------------------------------------------------------------------------------
// The emulator

/**
 * An in-process Service Bus namespace on a local TCP port. Point the real client at
 * {@link ServiceBusEmulator.connectionString}; inspect and perturb queues through the other members.
 *
 * @example
 * const emulator = new ServiceBusEmulator({ queues: [{ name: 'expirations', lockDurationInMs: 5000 }] });
 * await emulator.start();
 * const client = new ServiceBusClient(emulator.connectionString);
 * // ... close the clients, then:
 * await emulator.stop();
 */
export class ServiceBusEmulator {
  readonly faults: ServiceBusEmulatorFaults;

  private readonly host: string;
  private readonly requestedPort: number;
  private readonly queues = new Map<string, QueueState>();
  /** Live locks by token, for renewal and settlement over the management link. */
  private readonly locks = new Map<string, MessageLock>();
  /** Which lock a delivery on a consumer link carries, to settle it when the client disposes it. */
  private readonly deliveryLocks = new WeakMap<Delivery, MessageLock>();
  private readonly receiverRoles = new WeakMap<Receiver, ReceiverRole>();
  /** Per connection, the links that carry management and CBS replies, keyed by their `reply_to` address. */
  private readonly replyLinks = new WeakMap<Connection, Map<string, Sender>>();
  private readonly connections = new Set<Connection>();
  private readonly sockets = new Set<Socket>();
  private container: Container | undefined;
  private server: Server | undefined;
  private boundPort: number | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: ServiceBusEmulatorOptions) {
    this.host = options.host ?? DEFAULT_HOST;
    this.requestedPort = options.port ?? 0;
    for (const queueOptions of options.queues) {
      const key = queueOptions.name.toLowerCase();
      if (this.queues.has(key)) throw new Error(`Queue '${queueOptions.name}' is declared twice.`);
      const lockDurationInMs = queueOptions.lockDurationInMs ?? DEFAULT_LOCK_DURATION_IN_MS;
      if (!(lockDurationInMs > 0 && lockDurationInMs <= MAX_TIMER_DELAY_IN_MS)) {
        throw new Error(`lockDurationInMs must be between 1 and ${MAX_TIMER_DELAY_IN_MS}.`);
      }
      if ((queueOptions.maxDeliveryCount ?? 1) < 1) throw new Error('maxDeliveryCount must be at least 1.');
      this.queues.set(key, new QueueState(queueOptions));
    }
    this.faults = {
      dropScheduled: (queue, predicate, count) => {
        if (count !== undefined && !(count >= 0)) throw new Error('count must be zero or more.');
        this.requireQueue(queue).dropRules.push({ predicate, remaining: count ?? Number.POSITIVE_INFINITY });
      },
      delayDelivery: (queue, delayInMs) => {
        if (!(delayInMs >= 0)) throw new Error('delayInMs must be zero or more.');
        this.requireQueue(queue).deliveryDelayInMs = delayInMs;
      },
      clear: () => {
        for (const queue of this.queues.values()) {
          queue.dropRules = [];
          queue.deliveryDelayInMs = 0;
          for (const entity of [queue.active, queue.deadLetter]) {
            for (const stored of entity.messages) stored.availableAt = 0;
            this.schedulePump(entity);
          }
        }
      },
    };
  }

  /** Port the emulator listens on; only known once {@link start} has resolved. */
  get port(): number {
    if (this.boundPort === undefined) throw new Error('The Service Bus emulator is not started.');
    return this.boundPort;
  }

  /** Connection string for `new ServiceBusClient(...)`; the emulator flag makes the client use plain TCP. */
  get connectionString(): string {
    const host = connectableHost(this.host);
    return `Endpoint=sb://${host}:${this.port};SharedAccessKeyName=dev;SharedAccessKey=dev;UseDevelopmentEmulator=true`;
  }

  async start(): Promise<void> {
    if (this.server) throw new Error('The Service Bus emulator is already started.');
    if (this.stopping) throw new Error('A stopped Service Bus emulator cannot be restarted.');
    const container = create_container({
      id: 'servicebus-emulator',
      // Producer deliveries are accepted only once stored, and settled explicitly on consumer links.
      autoaccept: false,
      // Abandon (modified) and release are different outcomes to Service Bus.
      treat_modified_as_released: false,
    });
    this.container = container;
    this.registerHandlers(container);

    const server = container.listen({ port: this.requestedPort, host: this.host });
    this.server = server;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        this.server = undefined;
        this.container = undefined;
        reject(error);
      };
      server.once('error', onError);
      server.once('listening', () => {
        server.off('error', onError);
        server.on('error', (error) => logError('server_error', error));
        resolve();
      });
    });
    this.boundPort = (server.address() as AddressInfo).port;
  }

  /** Closes every client connection, stops listening and clears all timers. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  listScheduled(
    queue: string,
  ): Array<{ sequenceNumber: bigint; scheduledEnqueueTime: Date; body: unknown; messageId?: string }> {
    return [...this.requireQueue(queue).scheduled.values()]
      .sort((a, b) => compareBigInt(a.sequenceNumber, b.sequenceNumber))
      .map((scheduled) => {
        const messageId = messageIdOf(scheduled.message);
        return {
          sequenceNumber: scheduled.sequenceNumber,
          scheduledEnqueueTime: new Date(scheduled.scheduledEnqueueTime),
          body: decodeBody(scheduled.message.body),
          ...(messageId === undefined ? {} : { messageId }),
        };
      });
  }

  /** Messages in the queue (not scheduled, not dead-lettered); `deliveryCount` counts deliveries so far. */
  listActive(
    queue: string,
  ): Array<{ sequenceNumber: bigint; body: unknown; deliveryCount: number; locked: boolean }> {
    return this.requireQueue(queue).active.messages.map((stored) => ({
      sequenceNumber: stored.sequenceNumber,
      body: decodeBody(stored.message.body),
      deliveryCount: stored.deliveryCount,
      locked: stored.lock !== undefined,
    }));
  }

  listDeadLettered(
    queue: string,
  ): Array<{ sequenceNumber: bigint; body: unknown; deadLetterReason?: string; deliveryCount: number }> {
    return this.requireQueue(queue).deadLetter.messages.map((stored) => {
      const reason: unknown = stored.message.application_properties?.DeadLetterReason;
      return {
        sequenceNumber: stored.sequenceNumber,
        body: decodeBody(stored.message.body),
        ...(typeof reason === 'string' ? { deadLetterReason: reason } : {}),
        deliveryCount: stored.deliveryCount,
      };
    });
  }

  /** Counts per state; `completed` includes messages taken in receive-and-delete mode. */
  stats(queue: string): { scheduled: number; active: number; deadLettered: number; completed: number } {
    const state = this.requireQueue(queue);
    return {
      scheduled: state.scheduled.size,
      active: state.active.messages.length,
      deadLettered: state.deadLetter.messages.length,
      completed: state.completed,
    };
  }

  // -------------------------------------------------------------------------------------------------
  // Connection and link lifecycle

  private registerHandlers(container: Container): void {
    // An exception escaping a rhea handler does not fail anything visibly: the client just waits for a
    // reply that never comes. Every handler is therefore guarded and logs what went wrong.
    const on = (event: string, handler: (context: EventContext) => void): void => {
      container.on(event, (context: EventContext) => {
        try {
          handler(context);
        } catch (error) {
          logError('handler_failed', error, { event });
        }
      });
    };
    on('connection_open', (context) => this.connections.add(context.connection));
    on('connection_close', (context) => this.forgetConnection(context.connection));
    on('disconnected', (context) => this.forgetConnection(context.connection));
    on('connection_error', (context) => logError('connection_error', context.connection.error));
    on('protocol_error', (context) => logError('protocol_error', context.error));
    on('session_close', (context) =>
      this.dropConsumers((consumer) => consumer.sender.session === context.session),
    );
    on('receiver_open', (context) => this.onReceiverOpen(required(context.receiver, 'receiver')));
    on('sender_open', (context) => this.onSenderOpen(required(context.sender, 'sender')));
    on('sender_close', (context) => this.forgetSender(required(context.sender, 'sender')));
    on('message', (context) => this.onMessage(context));
    on('sender_flow', (context) => this.onCredit(required(context.sender, 'sender'), false));
    on('sender_draining', (context) => this.onCredit(required(context.sender, 'sender'), true));
    on('accepted', (context) => this.onDisposition(context, 'accepted'));
    on('rejected', (context) => this.onDisposition(context, 'rejected'));
    on('modified', (context) => this.onDisposition(context, 'modified'));
    on('released', (context) => this.onDisposition(context, 'released'));
    // rhea throws an 'error' event nobody listens to, which would take the test process down.
    container.on('error', (error: unknown) => logError('amqp_error', error));
  }

  private onReceiverOpen(receiver: Receiver): void {
    const address = addressOf(receiver.target);
    setTerminus(receiver);
    if (address === CBS_ADDRESS) {
      this.receiverRoles.set(receiver, { kind: 'cbs' });
      return;
    }
    const resolved = this.resolveAddress(address);
    if (!resolved) {
      refuse(receiver, Condition.notFound, `The messaging entity '${address ?? ''}' could not be found.`);
      return;
    }
    if (resolved.management) {
      this.receiverRoles.set(receiver, { kind: 'management', entity: resolved.entity });
      return;
    }
    if (resolved.entity.isDeadLetter) {
      refuse(receiver, Condition.notAllowed, `Messages cannot be sent to '${resolved.entity.path}'.`);
      return;
    }
    // Without this the client computes a maximum of 0 bytes and rejects every batch as too large.
    localAttach(receiver).max_message_size = MAX_MESSAGE_SIZE_IN_BYTES;
    this.receiverRoles.set(receiver, { kind: 'producer', queue: resolved.entity.queue });
  }

  private onSenderOpen(sender: Sender): void {
    const address = addressOf(sender.source);
    setTerminus(sender);
    if (address === CBS_ADDRESS || address?.toLowerCase().endsWith(MANAGEMENT_SUFFIX)) {
      // The client's receiving half of a request/response pair. Replies are routed to it by reply_to,
      // which names the link's target address (management) or, when it has none, the link (CBS).
      if (address !== CBS_ADDRESS && !this.resolveAddress(address)) {
        refuse(sender, Condition.notFound, `The messaging entity '${address ?? ''}' could not be found.`);
        return;
      }
      const links = this.replyLinksOf(sender.connection);
      links.set(sender.name, sender);
      const replyTo = addressOf(sender.target);
      if (replyTo !== undefined) links.set(replyTo, sender);
      return;
    }
    const resolved = this.resolveAddress(address);
    if (!resolved || resolved.management) {
      refuse(sender, Condition.notFound, `The messaging entity '${address ?? ''}' could not be found.`);
      return;
    }
    if (hasSessionFilter(sender.source)) {
      refuse(sender, Condition.notImplemented, 'The Service Bus emulator does not support sessions.');
      return;
    }
    // Echo the client's settlement modes: receive-and-delete asks for pre-settled deliveries.
    const attach = localAttach(sender);
    attach.snd_settle_mode = sender.snd_settle_mode;
    attach.rcv_settle_mode = sender.rcv_settle_mode;
    const consumer: Consumer = {
      sender,
      entity: resolved.entity,
      receiveAndDelete: sender.snd_settle_mode === 1,
      drainRequested: false,
      unflushed: 0,
    };
    answerDrainWithoutCredit(sender);
    resolved.entity.consumers.push(consumer);
    this.schedulePump(resolved.entity);
  }

  private onCredit(sender: Sender, draining: boolean): void {
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

  private forgetConnection(connection: Connection): void {
    this.connections.delete(connection);
    this.replyLinks.delete(connection);
    // Locks the connection held stay until they expire, as on Service Bus.
    this.dropConsumers((consumer) => consumer.sender.connection === connection);
  }

  private forgetSender(sender: Sender): void {
    this.dropConsumers((consumer) => consumer.sender === sender);
    const links = this.replyLinks.get(sender.connection);
    for (const [replyTo, link] of links ?? []) if (link === sender) links?.delete(replyTo);
  }

  private dropConsumers(predicate: (consumer: Consumer) => boolean): void {
    for (const queue of this.queues.values()) {
      for (const entity of [queue.active, queue.deadLetter]) {
        for (let i = entity.consumers.length - 1; i >= 0; i--) {
          const consumer = entity.consumers[i];
          if (consumer && predicate(consumer)) entity.consumers.splice(i, 1);
        }
      }
    }
  }

  private consumerOf(sender: Sender): Consumer | undefined {
    for (const queue of this.queues.values()) {
      for (const entity of [queue.active, queue.deadLetter]) {
        const consumer = entity.consumers.find((candidate) => candidate.sender === sender);
        if (consumer) return consumer;
      }
    }
    return undefined;
  }

  private replyLinksOf(connection: Connection): Map<string, Sender> {
    let links = this.replyLinks.get(connection);
    if (!links) {
      links = new Map();
      this.replyLinks.set(connection, links);
    }
    return links;
  }

  private resolveAddress(address: string | undefined): { entity: Entity; management: boolean } | undefined {
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

  private requireQueue(name: string): QueueState {
    const queue = this.queues.get(name.toLowerCase());
    if (!queue) throw new Error(`The Service Bus emulator has no queue '${name}'.`);
    return queue;
  }

  // -------------------------------------------------------------------------------------------------
  // Incoming messages: sends, CBS and management requests

  private onMessage(context: EventContext): void {
    const receiver = required(context.receiver, 'receiver');
    const delivery = required(context.delivery, 'delivery');
    const role = this.receiverRoles.get(receiver);
    if (!role) {
      delivery.reject({
        condition: Condition.notFound,
        description: 'The link is not attached to an entity.',
      });
      return;
    }
    if (role.kind === 'producer') {
      this.onSend(role.queue, context, delivery);
      return;
    }
    delivery.accept();
    const request = required(context.message, 'message');
    if (role.kind === 'cbs') {
      // Any token is good enough locally; 202 is what Service Bus answers to put-token. CBS replies use
      // hyphenated keys, unlike management replies.
      const isPutToken = request.application_properties?.operation === Operation.putToken;
      this.reply(context.connection, request, {
        application_properties: isPutToken
          ? { 'status-code': 202, 'status-description': 'Accepted' }
          : { 'status-code': 501, 'status-description': 'Only put-token is supported.' },
      });
      return;
    }
    this.onManagementRequest(context.connection, role.entity, request);
  }

  private onSend(queue: QueueState, context: EventContext, delivery: Delivery): void {
    let messages: Message[];
    try {
      messages = unpackTransfer(context);
    } catch (error) {
      delivery.reject({ condition: Condition.invalidField, description: describe(error) });
      return;
    }
    const now = Date.now();
    for (const message of messages) {
      ensureMessageId(message);
      // A duplicate is accepted like any other message, and then it is not there (duplicateDetection.ts).
      if (!queue.admits(message)) continue;
      // A message sent with a future scheduled enqueue time is scheduled, as on Service Bus.
      const due = dateAnnotation(message, Annotation.scheduledEnqueueTime);
      if (due && due.getTime() > now) this.schedule(queue, message, due);
      else this.enqueue(queue, queue.takeSequenceNumber(), message);
    }
    delivery.accept();
  }

  private onManagementRequest(connection: Connection, entity: Entity, request: Message): void {
    const operation: unknown = request.application_properties?.operation;
    try {
      const body = this.runManagementOperation(entity, operation, asRecord(request.body));
      this.reply(connection, request, {
        application_properties: body
          ? { statusCode: 200, statusDescription: 'OK' }
          : { statusCode: 204, statusDescription: 'No Content' },
        ...(body ? { body } : {}),
      });
    } catch (error) {
      const failure =
        error instanceof ManagementError
          ? error
          : new ManagementError(500, Condition.internalError, describe(error));
      if (!(error instanceof ManagementError)) {
        logError('management_request_failed', error, { operation: String(operation), entity: entity.path });
      }
      // The client reads camelCase keys on management replies (peek on an empty queue breaks otherwise).
      this.reply(connection, request, {
        application_properties: {
          statusCode: failure.statusCode,
          statusDescription: failure.message,
          errorCondition: failure.condition,
        },
      });
    }
  }

  /** Returns the reply body, or undefined for "204 No Content". */
  private runManagementOperation(
    entity: Entity,
    operation: unknown,
    body: Record<string, unknown>,
  ): Record<string, unknown> | undefined {
    switch (operation) {
      case Operation.scheduleMessage:
        return this.scheduleFromRequest(entity, body);
      case Operation.cancelScheduledMessage:
        for (const sequenceNumber of arrayField(body, 'sequence-numbers')) {
          // Unknown, already enqueued or already cancelled numbers are ignored, as on Service Bus.
          this.cancelScheduled(entity.queue, decodeLong(sequenceNumber));
        }
        return {};
      case Operation.renewLock:
        return {
          expirations: arrayField(body, 'lock-tokens').map((token) => this.renewLock(decodeLockToken(token))),
        };
      case Operation.peekMessage:
        return this.peek(entity, body);
      case Operation.updateDisposition:
        for (const token of arrayField(body, 'lock-tokens'))
          this.updateDisposition(decodeLockToken(token), body);
        return {};
      default:
        throw new ManagementError(
          501,
          Condition.notImplemented,
          `The Service Bus emulator does not implement the operation '${String(operation)}'.`,
        );
    }
  }

  private reply(connection: Connection, request: Message, response: Record<string, unknown>): void {
    const replyTo: unknown = request.reply_to;
    const link = typeof replyTo === 'string' ? this.replyLinks.get(connection)?.get(replyTo) : undefined;
    if (!link || !link.is_open()) {
      logError('reply_link_missing', undefined, { replyTo: String(replyTo) });
      return;
    }
    // rhea queues the reply until the client grants credit, so no credit bookkeeping is needed here.
    link.send({ correlation_id: request.message_id, body: undefined, ...response });
  }

  // -------------------------------------------------------------------------------------------------
  // Scheduling

  private scheduleFromRequest(entity: Entity, body: Record<string, unknown>): Record<string, unknown> {
    if (entity.isDeadLetter) {
      throw new ManagementError(
        400,
        Condition.notAllowed,
        'Messages cannot be scheduled on a dead-letter queue.',
      );
    }
    const messages = arrayField(body, 'messages').map((entry) => {
      const encoded = asRecord(entry).message;
      if (!Buffer.isBuffer(encoded)) {
        throw new ManagementError(
          400,
          Condition.invalidField,
          "Each scheduled entry needs an encoded 'message'.",
        );
      }
      const message = decodeMessage(encoded);
      ensureMessageId(message);
      const due = dateAnnotation(message, Annotation.scheduledEnqueueTime);
      if (!due) {
        throw new ManagementError(
          400,
          Condition.invalidField,
          `A scheduled message needs '${Annotation.scheduledEnqueueTime}'.`,
        );
      }
      return { message, due };
    });
    // A duplicate still gets a sequence number back, of a message that does not exist (duplicateDetection.ts).
    const sequenceNumbers = messages.map(({ message, due }) =>
      entity.queue.admits(message)
        ? this.schedule(entity.queue, message, due)
        : entity.queue.takeSequenceNumber(),
    );
    return {
      'sequence-numbers': amqpTypes.wrap_array(sequenceNumbers.map(longBytes), AMQP_LONG_TYPECODE, undefined),
    };
  }

  private schedule(queue: QueueState, message: Message, due: Date): bigint {
    const sequenceNumber = queue.takeSequenceNumber();
    queue.scheduled.set(sequenceNumber, { sequenceNumber, message, scheduledEnqueueTime: due });
    this.armScheduler(queue);
    return sequenceNumber;
  }

  private armScheduler(queue: QueueState): void {
    clearTimeout(queue.schedulerTimer);
    queue.schedulerTimer = undefined;
    if (this.stopping) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const scheduled of queue.scheduled.values()) {
      earliest = Math.min(earliest, scheduled.scheduledEnqueueTime.getTime());
    }
    if (!Number.isFinite(earliest)) return;
    queue.schedulerTimer = setTimeout(
      () => guarded('scheduled_enqueue_failed', () => this.enqueueDue(queue)),
      Math.min(Math.max(earliest - Date.now(), 0), MAX_TIMER_DELAY_IN_MS),
    );
    queue.schedulerTimer.unref();
  }

  /** Enqueues what has come due, earliest first and by sequence number among equals. */
  private enqueueDue(queue: QueueState): void {
    // Timers may fire a millisecond early; whatever is not yet due waits for the re-armed timer.
    const now = Date.now();
    const due = [...queue.scheduled.values()]
      .filter((scheduled) => scheduled.scheduledEnqueueTime.getTime() <= now)
      .sort(
        (a, b) =>
          a.scheduledEnqueueTime.getTime() - b.scheduledEnqueueTime.getTime() ||
          compareBigInt(a.sequenceNumber, b.sequenceNumber),
      );
    try {
      for (const scheduled of due) {
        queue.scheduled.delete(scheduled.sequenceNumber);
        if (!this.shouldDrop(queue, scheduled.message)) {
          // Enqueued "as if had been enqueued at the current instant", with a new sequence number (file header).
          this.enqueue(queue, queue.takeSequenceNumber(), scheduled.message);
        }
      }
    } finally {
      this.armScheduler(queue);
    }
  }

  private shouldDrop(queue: QueueState, message: Message): boolean {
    const body = decodeBody(message.body);
    const matches = (rule: DropRule): boolean => {
      try {
        return rule.predicate?.(body) ?? true;
      } catch (error) {
        // A faulty test predicate must not lose the message.
        logError('drop_predicate_failed', error, { queue: queue.name });
        return false;
      }
    };
    const rule = queue.dropRules.find((candidate) => candidate.remaining > 0 && matches(candidate));
    if (!rule) return false;
    rule.remaining -= 1;
    return true;
  }

  private cancelScheduled(queue: QueueState, sequenceNumber: bigint): void {
    if (queue.scheduled.delete(sequenceNumber)) this.armScheduler(queue);
  }

  private enqueue(queue: QueueState, sequenceNumber: bigint, message: Message): void {
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

  // -------------------------------------------------------------------------------------------------
  // Delivery to consumers

  private schedulePump(entity: Entity): void {
    if (entity.pumpScheduled || this.stopping) return;
    entity.pumpScheduled = true;
    // Coalesces the many triggers of one turn (sends, settlements, flows) into a single pass.
    setImmediate(() => {
      entity.pumpScheduled = false;
      guarded('pump_failed', () => this.pump(entity));
    });
  }

  private pump(entity: Entity): void {
    if (this.stopping) return;
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
    const lockBytes = randomBytes(16);
    const lock: MessageLock = {
      token: uuid_to_string(lockBytes),
      entity,
      stored,
      lockedUntil: Date.now() + entity.queue.lockDurationInMs,
      timer: undefined,
    };
    stored.lock = lock;
    this.locks.set(lock.token, lock);
    this.armLockExpiry(lock);
    // The client shows the delivery tag in .NET GUID byte order but sends the token back in RFC 4122 order.
    // Tagging with the swapped bytes makes both views equal the token we key locks by.
    const delivery = this.send(
      consumer,
      toWire(stored, { deliveryCount: previousAttempts, lockedUntil: new Date(lock.lockedUntil) }),
      dotNetGuidBytes(lockBytes),
    );
    this.deliveryLocks.set(delivery, lock);
  }

  private armLockExpiry(lock: MessageLock): void {
    clearTimeout(lock.timer);
    lock.timer = setTimeout(
      () => guarded('lock_expiry_failed', () => this.releaseLock(lock)),
      Math.max(lock.lockedUntil - Date.now(), 0),
    );
    lock.timer.unref();
  }

  private isCurrent(lock: MessageLock | undefined): lock is MessageLock {
    return lock !== undefined && lock.stored.lock === lock && this.locks.get(lock.token) === lock;
  }

  private endLock(lock: MessageLock): void {
    clearTimeout(lock.timer);
    lock.timer = undefined;
    this.locks.delete(lock.token);
    lock.stored.lock = undefined;
  }

  /** Abandon or lock expiry: the message becomes available again unless it has used up its deliveries. */
  private releaseLock(lock: MessageLock, propertiesToModify?: unknown): void {
    if (!this.isCurrent(lock)) return;
    this.endLock(lock);
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
      this.schedulePump(entity);
    }
  }

  private complete(lock: MessageLock): void {
    this.endLock(lock);
    removeFrom(lock.entity.messages, lock.stored);
    if (!lock.entity.isDeadLetter) lock.entity.queue.completed += 1;
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
    this.schedulePump(target);
  }

  // -------------------------------------------------------------------------------------------------
  // Settlement

  private onDisposition(
    context: EventContext,
    outcome: 'accepted' | 'rejected' | 'modified' | 'released',
  ): void {
    const delivery = required(context.delivery, 'delivery');
    const lock = this.deliveryLocks.get(delivery);
    if (!lock) {
      // Settlement of something we did not lock (a reply, or a pre-settled delivery); nothing to do.
      if (!delivery.settled) delivery.update(true);
      return;
    }
    this.deliveryLocks.delete(delivery);
    if (!this.isCurrent(lock)) {
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

  private deadLetterLocked(
    lock: MessageLock,
    reason: unknown,
    description: unknown,
    properties: unknown,
  ): void {
    this.endLock(lock);
    const extra = { ...asRecord(properties) };
    delete extra.DeadLetterReason;
    delete extra.DeadLetterErrorDescription;
    applyProperties(lock.stored.message, extra);
    if (lock.entity.isDeadLetter) {
      // Dead-lettering from the dead-letter queue leaves the message there; Service Bus has nowhere further.
      this.schedulePump(lock.entity);
      return;
    }
    this.deadLetter(
      lock.entity,
      lock.stored,
      typeof reason === 'string' ? reason : undefined,
      typeof description === 'string' ? description : undefined,
    );
  }

  private renewLock(token: string): Date {
    const lock = this.locks.get(token);
    if (!this.isCurrent(lock))
      throw new ManagementError(410, Condition.lockLost, lockLostError().description ?? '');
    lock.lockedUntil = Date.now() + lock.entity.queue.lockDurationInMs;
    this.armLockExpiry(lock);
    return new Date(lock.lockedUntil);
  }

  /** Settlement over the management link, which the client uses once the receiving link is gone. */
  private updateDisposition(token: string, body: Record<string, unknown>): void {
    const lock = this.locks.get(token);
    if (!this.isCurrent(lock))
      throw new ManagementError(410, Condition.lockLost, lockLostError().description ?? '');
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

  // -------------------------------------------------------------------------------------------------
  // Peek

  private peek(entity: Entity, body: Record<string, unknown>): Record<string, unknown> | undefined {
    const from = decodeLong(body['from-sequence-number'] ?? 1);
    const count = typeof body['message-count'] === 'number' ? body['message-count'] : 1;
    // Peek sees locked and scheduled messages too (the latter with state "scheduled"), not dead-lettered ones.
    const candidates: Array<{ sequenceNumber: bigint; encode: () => Buffer }> = entity.messages.map(
      (stored) => ({
        sequenceNumber: stored.sequenceNumber,
        encode: () =>
          amqpMessage.encode(
            toWire(stored, {
              deliveryCount: stored.deliveryCount,
              ...(stored.lock ? { lockedUntil: new Date(stored.lock.lockedUntil) } : {}),
            }),
          ),
      }),
    );
    if (!entity.isDeadLetter) {
      for (const scheduled of entity.queue.scheduled.values()) {
        candidates.push({
          sequenceNumber: scheduled.sequenceNumber,
          encode: () => amqpMessage.encode(scheduledToWire(scheduled)),
        });
      }
    }
    const page = candidates
      .filter((candidate) => candidate.sequenceNumber >= from)
      .sort((a, b) => compareBigInt(a.sequenceNumber, b.sequenceNumber))
      .slice(0, Math.max(count, 0));
    if (page.length === 0) return undefined;
    return { messages: page.map((candidate) => ({ message: candidate.encode() })) };
  }

  // -------------------------------------------------------------------------------------------------
  // Shutdown

  private async shutdown(): Promise<void> {
    for (const queue of this.queues.values()) {
      clearTimeout(queue.schedulerTimer);
      for (const entity of [queue.active, queue.deadLetter]) {
        clearTimeout(entity.wakeTimer);
        entity.consumers.length = 0;
      }
    }
    for (const lock of this.locks.values()) clearTimeout(lock.timer);
    const server = this.server;
    if (!server) return;
    for (const connection of this.connections) {
      try {
        connection.close();
      } catch (error) {
        logError('connection_close_failed', error);
      }
    }
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Give clients a moment to answer the close frame, so they see a clean close rather than a reset;
    // whatever is still open afterwards is cut off.
    const deadline = Date.now() + SHUTDOWN_GRACE_IN_MS;
    while (this.sockets.size > 0 && Date.now() < deadline) await sleep(10);
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.connections.clear();
    this.server = undefined;
    this.container?.removeAllListeners();
    this.container = undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// Helpers

function logError(event: string, error: unknown, details: Record<string, unknown> = {}): void {
  console.error(`servicebus-emulator ${event}`, {
    ...details,
    ...(error === undefined ? {} : { error: describe(error) }),
  });
}

/** A wildcard listen address is not something a client can connect to; IPv6 needs brackets in a URL. */
function connectableHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function guarded(event: string, action: () => void): void {
  try {
    action();
  } catch (error) {
    logError(event, error);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? error.message;
  if (typeof error === 'object' && error !== null) return JSON.stringify(error);
  return String(error);
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`rhea event without a ${what}.`);
  return value;
}

function addressOf(terminus: unknown): string | undefined {
  const address = asRecord(terminus).address;
  return typeof address === 'string' ? address : undefined;
}

function hasSessionFilter(source: unknown): boolean {
  const filter = asRecord(source).filter;
  return typeof filter === 'object' && filter !== null && SESSION_FILTER in filter;
}

/** Answers the client's attach with the same addresses, as a broker does when it accepts a link. */
function setTerminus(link: Sender | Receiver): void {
  const source = addressOf(link.source);
  const target = addressOf(link.target);
  if (source !== undefined) link.set_source({ address: source });
  if (target !== undefined) link.set_target({ address: target });
}

/**
 * Refuses a link the way a broker does: an attach without the terminus, then a detach carrying the error,
 * which the client turns into a typed error (`amqp:not-found` becomes `MessagingEntityNotFound`).
 */
function refuse(link: Sender | Receiver, condition: string, description: string): void {
  const attach = localAttach(link);
  if (link.is_sender()) attach.source = undefined;
  else attach.target = undefined;
  link.close({ condition, description });
}

/**
 * rhea (3.0.5) marks a flow as drained only while credit is left. When the last transfers use the credit up
 * (they crossed the client's drain request, or the drain was answered with exactly as many messages as
 * credit), the reply lacks drain=true and receiveMessages() waits for its drain timeout, then closes the
 * link. With no credit left the drain is complete, so say so.
 */
function answerDrainWithoutCredit(sender: Sender): void {
  const link = sender as unknown as {
    _get_drain?: () => boolean;
    _draining?: boolean;
    _drained?: boolean;
    credit?: number;
  };
  const original = link._get_drain;
  if (typeof original !== 'function') return;
  link._get_drain = function (this: typeof link): boolean {
    if (this._draining === true && this._drained === true && this.credit === 0) return true;
    return original.call(this);
  };
}

function settle(delivery: Delivery, outcome: Outcome): void {
  // The client's promise for complete()/abandon()/deadLetter() resolves only when the broker settles.
  delivery.update(true, outcome.described());
}

function lockLostError(): AmqpError {
  return {
    condition: Condition.lockLost,
    description:
      'The lock supplied is invalid. Either the lock expired, or the message has already been removed.',
  };
}

/** The messages a producer transfer carries: one message, or a batch of encoded messages. */
function unpackTransfer(context: EventContext): Message[] {
  const format = (context as { format?: number }).format ?? 0;
  const payload = required(context.message, 'message');
  if (format === 0) return [payload];
  if (format !== BATCH_MESSAGE_FORMAT || !Buffer.isBuffer(payload)) {
    throw new Error(`Unsupported message format ${format}.`);
  }
  const envelope = decodeMessage(payload);
  const section = envelope.body as { typecode?: number; content?: unknown } | undefined;
  if (section?.typecode !== DATA_SECTION_TYPECODE) throw new Error('A batch must consist of data sections.');
  const parts = Array.isArray(section.content) ? (section.content as unknown[]) : [section.content];
  return parts.map((part) => {
    if (!Buffer.isBuffer(part)) throw new Error('A batch data section must hold an encoded message.');
    return decodeMessage(part);
  });
}

/** The message as a consumer receives it: stored content plus the broker's annotations and header. */
function toWire(stored: StoredMessage, options: { deliveryCount: number; lockedUntil?: Date }): Message {
  return {
    ...stored.message,
    delivery_count: options.deliveryCount,
    message_annotations: {
      ...(stored.message.message_annotations ?? {}),
      [Annotation.sequenceNumber]: amqpTypes.wrap_long(longBytes(stored.sequenceNumber)),
      [Annotation.enqueuedTime]: stored.enqueuedTime,
      ...(options.lockedUntil ? { [Annotation.lockedUntil]: options.lockedUntil } : {}),
    },
  };
}

function scheduledToWire(scheduled: ScheduledMessage): Message {
  return {
    ...scheduled.message,
    delivery_count: 0,
    message_annotations: {
      ...(scheduled.message.message_annotations ?? {}),
      [Annotation.sequenceNumber]: amqpTypes.wrap_long(longBytes(scheduled.sequenceNumber)),
      [Annotation.enqueuedTime]: scheduled.scheduledEnqueueTime,
      [Annotation.messageState]: SCHEDULED_MESSAGE_STATE,
    },
  };
}

/** Abandon and dead-letter may carry properties to modify; Service Bus applies them as application properties. */
function applyProperties(message: Message, properties: unknown): void {
  const entries = Object.entries(asRecord(properties)).filter(
    ([, value]) => value !== undefined && value !== null,
  );
  if (entries.length === 0) return;
  message.application_properties = {
    ...(message.application_properties ?? {}),
    ...Object.fromEntries(entries),
  };
}

/** The body as the client decodes it: JSON when a data section holds JSON, otherwise the raw content. */
function decodeBody(body: unknown): unknown {
  const section = body as { typecode?: unknown; content?: unknown } | undefined;
  if (typeof section?.typecode !== 'number' || !('content' in section)) return body;
  const content = section.content;
  if (section.typecode !== DATA_SECTION_TYPECODE || !Buffer.isBuffer(content)) return content;
  try {
    return JSON.parse(content.toString('utf8')) as unknown;
  } catch {
    return content;
  }
}

/**
 * Service Bus stamps an id on a message sent without one, and the client relies on it: its lock renewer
 * throws "no message ID" when such a message is settled.
 */
function ensureMessageId(message: Message): void {
  if (message.message_id === undefined || message.message_id === null) {
    message.message_id = randomBytes(16).toString('hex');
  }
}

function messageIdOf(message: Message): string | undefined {
  // AMQP allows string, ulong, uuid and binary ids; rhea decodes the last two to a Buffer.
  const id: unknown = message.message_id;
  if (typeof id === 'string') return id;
  if (typeof id === 'number' || typeof id === 'bigint') return id.toString();
  if (Buffer.isBuffer(id)) return id.length === 16 ? uuid_to_string(id) : id.toString('hex');
  return undefined;
}

function dateAnnotation(message: Message, name: string): Date | undefined {
  const value: unknown = message.message_annotations?.[name];
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  return undefined;
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function arrayField(body: Record<string, unknown>, name: string): unknown[] {
  const value = body[name];
  if (!Array.isArray(value))
    throw new ManagementError(400, Condition.invalidField, `'${name}' must be an array.`);
  return value as unknown[];
}

function longBytes(value: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64BE(value);
  return bytes;
}

/** rhea decodes an AMQP long to a number when it fits in 53 bits and to its 8 bytes otherwise. */
function decodeLong(value: unknown): bigint {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Buffer.isBuffer(value) && value.length === 8) return value.readBigInt64BE();
  throw new ManagementError(400, Condition.invalidField, 'A sequence number must be an AMQP long.');
}

function decodeLockToken(value: unknown): string {
  if (Buffer.isBuffer(value) && value.length === 16) return uuid_to_string(value);
  if (typeof value === 'string') return uuid_to_string(string_to_uuid(value));
  throw new ManagementError(400, Condition.invalidField, 'A lock token must be a UUID.');
}

/** Swaps the first three groups of a GUID between RFC 4122 and .NET (little-endian) byte order. */
function dotNetGuidBytes(bytes: Buffer): Buffer {
  const swapped = Buffer.from(bytes);
  swapped.subarray(0, 4).reverse();
  swapped.subarray(4, 6).reverse();
  swapped.subarray(6, 8).reverse();
  return swapped;
}

function compareBigInt(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function removeFrom<T>(items: T[], item: T): void {
  const index = items.indexOf(item);
  if (index >= 0) items.splice(index, 1);
}
