/**
 * The AMQP error conditions the emulator answers with, and the management error that carries a status code.
 * The client maps each condition to a typed `ServiceBusError` code (`amqp:not-found` becomes
 * `MessagingEntityNotFound`, `com.microsoft:message-lock-lost` becomes `MessageLockLost`).
 */
import type { AmqpError } from 'rhea';

export const Condition = {
  notFound: 'amqp:not-found',
  notAllowed: 'amqp:not-allowed',
  notImplemented: 'amqp:not-implemented',
  invalidField: 'amqp:invalid-field',
  internalError: 'amqp:internal-error',
  lockLost: 'com.microsoft:message-lock-lost',
} as const;

/** A management request that fails with a status the client maps to a typed error. */
export class ManagementError extends Error {
  constructor(
    readonly statusCode: number,
    readonly condition: string,
    description: string,
  ) {
    super(description);
    this.name = 'ManagementError';
  }
}

export function lockLostError(): AmqpError {
  return {
    condition: Condition.lockLost,
    description:
      'The lock supplied is invalid. Either the lock expired, or the message has already been removed.',
  };
}
