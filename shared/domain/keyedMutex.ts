/** How soon a task should have the key: `urgent` ones go ahead of every `normal` one already waiting. */
export type Urgency = 'normal' | 'urgent';

interface KeyQueue {
  /** Whoever waits for the key, by urgency; each is woken with the key already handed to it. */
  urgent: Array<() => void>;
  normal: Array<() => void>;
}

/**
 * Runs tasks one at a time per key. ARM serialises writes to one NSG anyway (a second one gets
 * `AnotherOperationInProgress`), so queueing them inside this instance spares a round of conflicts and retries.
 * Other instances are still handled by the retry loop.
 *
 * Waiting tasks run in order of arrival, except that `urgent` ones (closing access) run before any `normal` one
 * (opening it): Network RP runs one operation per NSG, so an expiry queued behind a burst of opens would keep a
 * port open for as many operations as there are opens ahead of it. The task already running is never
 * interrupted: an operation in flight at ARM cannot be called back.
 */
export class KeyedMutex {
  /** A key is present while a task holds it. */
  private readonly queues = new Map<string, KeyQueue>();

  async run<T>(key: string, task: () => Promise<T>, urgency: Urgency = 'normal'): Promise<T> {
    // Awaited here, in the caller's own async context: a task woken by another's release still runs as its caller
    // (its logs and trace spans are its own, not those of the task that ran before it).
    await this.acquire(key, urgency);
    try {
      return await task();
    } finally {
      this.release(key);
    }
  }

  private acquire(key: string, urgency: Urgency): Promise<void> {
    const q = this.queues.get(key);
    if (!q) {
      this.queues.set(key, { urgent: [], normal: [] });
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => q[urgency].push(resolve));
  }

  private release(key: string): void {
    const q = this.queues.get(key);
    const next = q?.urgent.shift() ?? q?.normal.shift();
    if (next) next();
    else this.queues.delete(key);
  }
}
