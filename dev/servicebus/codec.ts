/**
 * AMQP values and message contents as Service Bus encodes them: batches, bodies, message ids, sequence numbers
 * (AMQP longs) and lock tokens (UUIDs, in two byte orders). Pure functions, no broker state.
 */
import { randomBytes } from 'node:crypto';
import { message as amqpMessage, string_to_uuid, uuid_to_string } from 'rhea';
import type { EventContext, Message } from 'rhea';

import { Condition, ManagementError } from './errors';
import { required } from './log';

/** Message format of a batch: a message whose data sections are each an encoded message. */
const BATCH_MESSAGE_FORMAT = 0x80013700;
export const AMQP_LONG_TYPECODE = 0x81;
const DATA_SECTION_TYPECODE = 0x75;

/** rhea declares two Message types; the decoder's lacks the index signature the encoder takes. */
export function decodeMessage(bytes: Buffer): Message {
  return amqpMessage.decode(bytes) as unknown as Message;
}

/** The messages a producer transfer carries: one message, or a batch of encoded messages. */
export function unpackTransfer(context: EventContext): Message[] {
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

/** Abandon and dead-letter may carry properties to modify; Service Bus applies them as application properties. */
export function applyProperties(message: Message, properties: unknown): void {
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
export function decodeBody(body: unknown): unknown {
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
export function ensureMessageId(message: Message): void {
  if (message.message_id === undefined || message.message_id === null) {
    message.message_id = randomBytes(16).toString('hex');
  }
}

export function messageIdOf(message: Message): string | undefined {
  // AMQP allows string, ulong, uuid and binary ids; rhea decodes the last two to a Buffer.
  const id: unknown = message.message_id;
  if (typeof id === 'string') return id;
  if (typeof id === 'number' || typeof id === 'bigint') return id.toString();
  if (Buffer.isBuffer(id)) return id.length === 16 ? uuid_to_string(id) : id.toString('hex');
  return undefined;
}

export function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

export function arrayField(body: Record<string, unknown>, name: string): unknown[] {
  const value = body[name];
  if (!Array.isArray(value))
    throw new ManagementError(400, Condition.invalidField, `'${name}' must be an array.`);
  return value as unknown[];
}

export function longBytes(value: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64BE(value);
  return bytes;
}

/** rhea decodes an AMQP long to a number when it fits in 53 bits and to its 8 bytes otherwise. */
export function decodeLong(value: unknown): bigint {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Buffer.isBuffer(value) && value.length === 8) return value.readBigInt64BE();
  throw new ManagementError(400, Condition.invalidField, 'A sequence number must be an AMQP long.');
}

export function decodeLockToken(value: unknown): string {
  if (Buffer.isBuffer(value) && value.length === 16) return uuid_to_string(value);
  if (typeof value === 'string') return uuid_to_string(string_to_uuid(value));
  throw new ManagementError(400, Condition.invalidField, 'A lock token must be a UUID.');
}

/** Swaps the first three groups of a GUID between RFC 4122 and .NET (little-endian) byte order. */
export function dotNetGuidBytes(bytes: Buffer): Buffer {
  const swapped = Buffer.from(bytes);
  swapped.subarray(0, 4).reverse();
  swapped.subarray(4, 6).reverse();
  swapped.subarray(6, 8).reverse();
  return swapped;
}

export function compareBigInt(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
