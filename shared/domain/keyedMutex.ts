/**
 * Runs tasks one at a time per key. ARM serialises writes to one NSG anyway (a second one gets
 * `AnotherOperationInProgress`), so queueing them inside this instance spares a round of conflicts and retries.
 * Other instances are still handled by the retry loop.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
