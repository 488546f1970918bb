/**
 * Injected broker faults: scheduled messages lost when they come due, and delivery held back. A test uses them
 * to see how the code under test copes with a broker that misbehaves; Azure's own rules are elsewhere.
 */
import type { Message } from 'rhea';

import { decodeBody } from './codec';
import type { Dispatcher } from './delivery';
import { logError } from './log';
import type { DropRule, Namespace, QueueState } from './model';
import type { ServiceBusEmulatorFaults } from './types';

export function createFaults(namespace: Namespace, dispatcher: Dispatcher): ServiceBusEmulatorFaults {
  return {
    dropScheduled: (queue, predicate, count) => {
      if (count !== undefined && !(count >= 0)) throw new Error('count must be zero or more.');
      namespace
        .requireQueue(queue)
        .dropRules.push({ predicate, remaining: count ?? Number.POSITIVE_INFINITY });
    },
    delayDelivery: (queue, delayInMs) => {
      if (!(delayInMs >= 0)) throw new Error('delayInMs must be zero or more.');
      namespace.requireQueue(queue).deliveryDelayInMs = delayInMs;
    },
    clear: () => {
      for (const queue of namespace.allQueues()) {
        queue.dropRules = [];
        queue.deliveryDelayInMs = 0;
        for (const entity of [queue.active, queue.deadLetter]) {
          for (const stored of entity.messages) stored.availableAt = 0;
          dispatcher.schedulePump(entity);
        }
      }
    },
  };
}

/** Whether a `dropScheduled` rule takes this message as it comes due; counts it against the rule. */
export function shouldDrop(queue: QueueState, message: Message): boolean {
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
