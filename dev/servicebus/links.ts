/**
 * The AMQP side of the namespace: connections, sessions and links as the `@azure/service-bus` client opens
 * them. Routes each link to its role (CBS, a `$management` request/response pair, a producer, a consumer),
 * takes in sends, answers CBS and management requests on the link named by `reply_to`, and passes credit and
 * dispositions on to delivery and settlement.
 */
import type { Connection, Container, Delivery, EventContext, Message, Receiver, Sender } from 'rhea';

import { scheduledEnqueueTimeOf } from './annotations';
import { ensureMessageId, unpackTransfer } from './codec';
import type { Dispatcher } from './delivery';
import { Condition } from './errors';
import { describe, logError, required } from './log';
import type { ManagementOperations } from './management';
import { isManagementAddress } from './model';
import type { Consumer, Entity, Namespace, QueueState } from './model';
import {
  addressOf,
  answerDrainWithoutCredit,
  hasSessionFilter,
  localAttach,
  refuse,
  setTerminus,
} from './rhea';
import type { Scheduler } from './scheduling';
import type { DeliveryOutcome, Settlement } from './settlement';

/** Standard tier's limit; the client sizes batches from what the broker announces on the link. */
const MAX_MESSAGE_SIZE_IN_BYTES = 256 * 1024;
const CBS_ADDRESS = '$cbs';
const PUT_TOKEN_OPERATION = 'put-token';

type ReceiverRole =
  | { readonly kind: 'cbs' }
  | { readonly kind: 'management'; readonly entity: Entity }
  | { readonly kind: 'producer'; readonly queue: QueueState };

export class Links {
  private readonly connections = new Set<Connection>();
  private readonly receiverRoles = new WeakMap<Receiver, ReceiverRole>();
  /** Per connection, the links that carry management and CBS replies, keyed by their `reply_to` address. */
  private readonly replyLinks = new WeakMap<Connection, Map<string, Sender>>();

  constructor(
    private readonly namespace: Namespace,
    private readonly dispatcher: Dispatcher,
    private readonly scheduler: Scheduler,
    private readonly settlement: Settlement,
    private readonly management: ManagementOperations,
  ) {}

  register(container: Container): void {
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
      this.dispatcher.dropConsumers((consumer) => consumer.sender.session === context.session),
    );
    on('receiver_open', (context) => this.onReceiverOpen(required(context.receiver, 'receiver')));
    on('sender_open', (context) => this.onSenderOpen(required(context.sender, 'sender')));
    on('sender_close', (context) => this.forgetSender(required(context.sender, 'sender')));
    on('message', (context) => this.onMessage(context));
    on('sender_flow', (context) => this.dispatcher.onCredit(required(context.sender, 'sender'), false));
    on('sender_draining', (context) => this.dispatcher.onCredit(required(context.sender, 'sender'), true));
    on('accepted', (context) => this.onDisposition(context, 'accepted'));
    on('rejected', (context) => this.onDisposition(context, 'rejected'));
    on('modified', (context) => this.onDisposition(context, 'modified'));
    on('released', (context) => this.onDisposition(context, 'released'));
    // rhea throws an 'error' event nobody listens to, which would take the test process down.
    container.on('error', (error: unknown) => logError('amqp_error', error));
  }

  /** Asks every client connection to close; what does not answer is cut off by the server's shutdown. */
  closeAll(): void {
    for (const connection of this.connections) {
      try {
        connection.close();
      } catch (error) {
        logError('connection_close_failed', error);
      }
    }
  }

  /** Forgets every connection once the server is closed. */
  clear(): void {
    this.connections.clear();
  }

  private onReceiverOpen(receiver: Receiver): void {
    const address = addressOf(receiver.target);
    setTerminus(receiver);
    if (address === CBS_ADDRESS) {
      this.receiverRoles.set(receiver, { kind: 'cbs' });
      return;
    }
    const resolved = this.namespace.resolveAddress(address);
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
    if (address === CBS_ADDRESS || isManagementAddress(address)) {
      // The client's receiving half of a request/response pair. Replies are routed to it by reply_to,
      // which names the link's target address (management) or, when it has none, the link (CBS).
      if (address !== CBS_ADDRESS && !this.namespace.resolveAddress(address)) {
        refuse(sender, Condition.notFound, `The messaging entity '${address ?? ''}' could not be found.`);
        return;
      }
      const links = this.replyLinksOf(sender.connection);
      links.set(sender.name, sender);
      const replyTo = addressOf(sender.target);
      if (replyTo !== undefined) links.set(replyTo, sender);
      return;
    }
    const resolved = this.namespace.resolveAddress(address);
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
    this.dispatcher.addConsumer(consumer);
  }

  private forgetConnection(connection: Connection): void {
    this.connections.delete(connection);
    this.replyLinks.delete(connection);
    // Locks the connection held stay until they expire, as on Service Bus.
    this.dispatcher.dropConsumers((consumer) => consumer.sender.connection === connection);
  }

  private forgetSender(sender: Sender): void {
    this.dispatcher.dropConsumers((consumer) => consumer.sender === sender);
    const links = this.replyLinks.get(sender.connection);
    for (const [replyTo, link] of links ?? []) if (link === sender) links?.delete(replyTo);
  }

  private replyLinksOf(connection: Connection): Map<string, Sender> {
    let links = this.replyLinks.get(connection);
    if (!links) {
      links = new Map();
      this.replyLinks.set(connection, links);
    }
    return links;
  }

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
      const isPutToken = request.application_properties?.operation === PUT_TOKEN_OPERATION;
      this.reply(context.connection, request, {
        application_properties: isPutToken
          ? { 'status-code': 202, 'status-description': 'Accepted' }
          : { 'status-code': 501, 'status-description': 'Only put-token is supported.' },
      });
      return;
    }
    this.reply(context.connection, request, this.management.respond(role.entity, request));
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
      const due = scheduledEnqueueTimeOf(message);
      if (due && due.getTime() > now) this.scheduler.schedule(queue, message, due);
      else this.dispatcher.enqueue(queue, queue.takeSequenceNumber(), message);
    }
    delivery.accept();
  }

  private onDisposition(context: EventContext, outcome: DeliveryOutcome): void {
    this.settlement.onDisposition(required(context.delivery, 'delivery'), outcome);
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
}
