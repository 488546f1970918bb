/**
 * A local Service Bus namespace that speaks AMQP 1.0 to the real `@azure/service-bus` client.
 *
 * Microsoft's emulator needs Docker, which the sandbox and CI do not have, so tests and the local
 * sandbox run this instead. It implements queues only (no topics, sessions, deferral or TTL) with the semantics
 * the project relies on: peek-lock with lock expiry and redelivery, `maxDeliveryCount` then dead-lettering,
 * scheduled messages and their cancellation, and duplicate detection on the queues that ask for it
 * (duplicateDetection.ts says exactly what Azure does and where that is written down).
 *
 * This file is the public face: the TCP server, start and stop, and what a test may inspect. The parts:
 * - types.ts: the options and the fault surface;
 * - model.ts: queues, entities, messages, locks and sequence numbers as data;
 * - links.ts: AMQP connections and links, sends, CBS, routing of management requests and replies;
 * - delivery.ts: the pump that hands messages to consumers within their credit;
 * - locks.ts, settlement.ts: peek-lock, renewal, complete/abandon/dead-letter, lock expiry;
 * - scheduling.ts: scheduled messages (a new sequence number when one comes due);
 * - management.ts: the `$management` operations (schedule, cancel, renew lock, peek, update disposition);
 * - duplicateDetection.ts, faults.ts, errors.ts, annotations.ts, codec.ts, rhea.ts, log.ts.
 *
 * Wire details that the client depends on and that are easy to get wrong are explained where they are
 * handled, with the source each was taken from.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { create_container } from 'rhea';
import type { Container } from 'rhea';

import { compareBigInt, decodeBody, messageIdOf } from './codec';
import { Dispatcher } from './delivery';
import { createFaults } from './faults';
import { Links } from './links';
import { LockTable } from './locks';
import { logError } from './log';
import { ManagementOperations } from './management';
import { Namespace } from './model';
import { Scheduler } from './scheduling';
import { Settlement } from './settlement';
import type { ServiceBusEmulatorFaults, ServiceBusEmulatorOptions } from './types';

export type { EmulatedQueueOptions, ServiceBusEmulatorFaults, ServiceBusEmulatorOptions } from './types';

const DEFAULT_HOST = '127.0.0.1';
/** How long stop() waits for clients to acknowledge the close before cutting their sockets. */
const SHUTDOWN_GRACE_IN_MS = 500;

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
  private readonly namespace: Namespace;
  private readonly locks: LockTable;
  private readonly links: Links;
  private readonly sockets = new Set<Socket>();
  private container: Container | undefined;
  private server: Server | undefined;
  private boundPort: number | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: ServiceBusEmulatorOptions) {
    this.host = options.host ?? DEFAULT_HOST;
    this.requestedPort = options.port ?? 0;
    this.namespace = new Namespace(options.queues);
    const isStopping = (): boolean => this.stopping !== undefined;
    // Lock expiry and settlement both release a message; the table calls back into settlement for it.
    this.locks = new LockTable((lock) => settlement.releaseLock(lock));
    const dispatcher = new Dispatcher(this.namespace, this.locks, isStopping);
    const settlement = new Settlement(this.locks, dispatcher);
    const scheduler = new Scheduler(dispatcher, isStopping);
    const management = new ManagementOperations(scheduler, settlement, this.locks);
    this.links = new Links(this.namespace, dispatcher, scheduler, settlement, management);
    this.faults = createFaults(this.namespace, dispatcher);
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
    this.links.register(container);

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
    return [...this.namespace.requireQueue(queue).scheduled.values()]
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
    return this.namespace.requireQueue(queue).active.messages.map((stored) => ({
      sequenceNumber: stored.sequenceNumber,
      body: decodeBody(stored.message.body),
      deliveryCount: stored.deliveryCount,
      locked: stored.lock !== undefined,
    }));
  }

  listDeadLettered(
    queue: string,
  ): Array<{ sequenceNumber: bigint; body: unknown; deadLetterReason?: string; deliveryCount: number }> {
    return this.namespace.requireQueue(queue).deadLetter.messages.map((stored) => {
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
    const state = this.namespace.requireQueue(queue);
    return {
      scheduled: state.scheduled.size,
      active: state.active.messages.length,
      deadLettered: state.deadLetter.messages.length,
      completed: state.completed,
    };
  }

  private async shutdown(): Promise<void> {
    for (const queue of this.namespace.allQueues()) {
      clearTimeout(queue.schedulerTimer);
      for (const entity of [queue.active, queue.deadLetter]) {
        clearTimeout(entity.wakeTimer);
        entity.consumers.length = 0;
      }
    }
    this.locks.clearTimers();
    const server = this.server;
    if (!server) return;
    this.links.closeAll();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Give clients a moment to answer the close frame, so they see a clean close rather than a reset;
    // whatever is still open afterwards is cut off.
    const deadline = Date.now() + SHUTDOWN_GRACE_IN_MS;
    while (this.sockets.size > 0 && Date.now() < deadline) await sleep(10);
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.links.clear();
    this.server = undefined;
    this.container?.removeAllListeners();
    this.container = undefined;
  }
}

/** A wildcard listen address is not something a client can connect to; IPv6 needs brackets in a URL. */
function connectableHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
