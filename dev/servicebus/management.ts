/**
 * The `$management` node of a queue or its dead-letter subqueue: schedule, cancel scheduled, renew lock, peek
 * and update disposition, each a request whose reply carries a status code the client maps to a typed error.
 *
 * A scheduled message dropped as a duplicate still answers with a sequence number, which names nothing
 * (duplicateDetection.ts gives the source).
 */
import { message as amqpMessage, types as amqpTypes } from 'rhea';
import type { Message } from 'rhea';

import { Annotation, scheduledEnqueueTimeOf, scheduledToWire, toWire } from './annotations';
import {
  AMQP_LONG_TYPECODE,
  arrayField,
  asRecord,
  compareBigInt,
  decodeLockToken,
  decodeLong,
  decodeMessage,
  ensureMessageId,
  longBytes,
} from './codec';
import { Condition, ManagementError } from './errors';
import type { LockTable } from './locks';
import { describe, logError } from './log';
import type { Entity } from './model';
import type { Scheduler } from './scheduling';
import type { Settlement } from './settlement';

const Operation = {
  scheduleMessage: 'com.microsoft:schedule-message',
  cancelScheduledMessage: 'com.microsoft:cancel-scheduled-message',
  renewLock: 'com.microsoft:renew-lock',
  peekMessage: 'com.microsoft:peek-message',
  updateDisposition: 'com.microsoft:update-disposition',
} as const;

export class ManagementOperations {
  constructor(
    private readonly scheduler: Scheduler,
    private readonly settlement: Settlement,
    private readonly locks: LockTable,
  ) {}

  /** The reply to a management request on `entity` (without routing: the caller sends it to `reply_to`). */
  respond(entity: Entity, request: Message): Record<string, unknown> {
    const operation: unknown = request.application_properties?.operation;
    try {
      const body = this.run(entity, operation, asRecord(request.body));
      return {
        application_properties: body
          ? { statusCode: 200, statusDescription: 'OK' }
          : { statusCode: 204, statusDescription: 'No Content' },
        ...(body ? { body } : {}),
      };
    } catch (error) {
      const failure =
        error instanceof ManagementError
          ? error
          : new ManagementError(500, Condition.internalError, describe(error));
      if (!(error instanceof ManagementError)) {
        logError('management_request_failed', error, { operation: String(operation), entity: entity.path });
      }
      // The client reads camelCase keys on management replies (peek on an empty queue breaks otherwise).
      return {
        application_properties: {
          statusCode: failure.statusCode,
          statusDescription: failure.message,
          errorCondition: failure.condition,
        },
      };
    }
  }

  /** Returns the reply body, or undefined for "204 No Content". */
  private run(
    entity: Entity,
    operation: unknown,
    body: Record<string, unknown>,
  ): Record<string, unknown> | undefined {
    switch (operation) {
      case Operation.scheduleMessage:
        return this.schedule(entity, body);
      case Operation.cancelScheduledMessage:
        for (const sequenceNumber of arrayField(body, 'sequence-numbers')) {
          // Unknown, already enqueued or already cancelled numbers are ignored, as on Service Bus.
          this.scheduler.cancel(entity.queue, decodeLong(sequenceNumber));
        }
        return {};
      case Operation.renewLock:
        return {
          expirations: arrayField(body, 'lock-tokens').map((token) =>
            this.locks.renew(decodeLockToken(token)),
          ),
        };
      case Operation.peekMessage:
        return this.peek(entity, body);
      case Operation.updateDisposition:
        for (const token of arrayField(body, 'lock-tokens'))
          this.settlement.updateDisposition(decodeLockToken(token), body);
        return {};
      default:
        throw new ManagementError(
          501,
          Condition.notImplemented,
          `The Service Bus emulator does not implement the operation '${String(operation)}'.`,
        );
    }
  }

  private schedule(entity: Entity, body: Record<string, unknown>): Record<string, unknown> {
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
      const due = scheduledEnqueueTimeOf(message);
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
        ? this.scheduler.schedule(entity.queue, message, due)
        : entity.queue.takeSequenceNumber(),
    );
    return {
      'sequence-numbers': amqpTypes.wrap_array(sequenceNumbers.map(longBytes), AMQP_LONG_TYPECODE, undefined),
    };
  }

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
}
