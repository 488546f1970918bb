/** How soon a task should have the key: `urgent` ones go ahead of every `normal` one already waiting. */
export type Urgency = 'normal' | 'urgent';

interface KeyQueue {
  running: boolean;
  urgent: Array<() => Promise<void>>;
  normal: Array<() => Promise<void>>;
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
  private readonly queues = new Map<string, KeyQueue>();

  run<T>(key: string, task: () => Promise<T>, urgency: Urgency = 'normal'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let q = this.queues.get(key);
      if (!q) this.queues.set(key, (q = { running: false, urgent: [], normal: [] }));
      q[urgency].push(() => Promise.resolve().then(task).then(resolve, reject));
      this.next(key, q);
    });
  }

  private next(key: string, q: KeyQueue): void {
    if (q.running) return;
    const task = q.urgent.shift() ?? q.normal.shift();
    if (!task) {
      this.queues.delete(key);
      return;
    }
    q.running = true;
    void task().finally(() => {
      q.running = false;
      this.next(key, q);
    });
  }
}
