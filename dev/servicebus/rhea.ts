/**
 * What the emulator needs from rhea beyond its typings: the outcome constructors, the local attach frame, the
 * link credit, and the link-level moves a broker makes (accept a link, refuse it, settle a delivery, answer a
 * drain). rhea's quirks that the client trips over are worked around here, each with the reason.
 */
import { message as amqpMessage } from 'rhea';
import type { AmqpError, Delivery, Receiver, Sender } from 'rhea';

import { asRecord } from './codec';

const SESSION_FILTER = 'com.microsoft:session-filter';

// rhea's typings omit the outcome constructors and the local attach frame; these are the few parts used.
export interface Outcome {
  described(): unknown;
}
interface OutcomeFactory {
  accepted(): Outcome;
  rejected(fields: { error?: AmqpError }): Outcome;
  modified(fields: { undeliverable_here?: boolean; delivery_failed?: boolean }): Outcome;
  released(): Outcome;
}
export const outcomes = amqpMessage as unknown as OutcomeFactory;

interface LocalAttach {
  source?: unknown;
  target?: unknown;
  snd_settle_mode?: number;
  rcv_settle_mode?: number;
  max_message_size?: number;
}
export function localAttach(link: Sender | Receiver): LocalAttach {
  return (link as unknown as { local: { attach: LocalAttach } }).local.attach;
}
/** Credit rhea has not yet consumed; it is decremented only when transfers are written. */
export function creditOf(sender: Sender): number {
  return (sender as unknown as { credit: number }).credit;
}
export function addressOf(terminus: unknown): string | undefined {
  const address = asRecord(terminus).address;
  return typeof address === 'string' ? address : undefined;
}

export function hasSessionFilter(source: unknown): boolean {
  const filter = asRecord(source).filter;
  return typeof filter === 'object' && filter !== null && SESSION_FILTER in filter;
}

/** Answers the client's attach with the same addresses, as a broker does when it accepts a link. */
export function setTerminus(link: Sender | Receiver): void {
  const source = addressOf(link.source);
  const target = addressOf(link.target);
  if (source !== undefined) link.set_source({ address: source });
  if (target !== undefined) link.set_target({ address: target });
}

/**
 * Refuses a link the way a broker does: an attach without the terminus, then a detach carrying the error,
 * which the client turns into a typed error (`amqp:not-found` becomes `MessagingEntityNotFound`).
 */
export function refuse(link: Sender | Receiver, condition: string, description: string): void {
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
export function answerDrainWithoutCredit(sender: Sender): void {
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

export function settle(delivery: Delivery, outcome: Outcome): void {
  // The client's promise for complete()/abandon()/deadLetter() resolves only when the broker settles.
  delivery.update(true, outcome.described());
}
