import { EventEmitter } from 'node:events';

/** What a catcher in the sandbox keeps: every item caught, oldest first, and a wait for one still to come. */
export class CaughtList<T> {
  private readonly items: T[] = [];
  private readonly events = new EventEmitter();

  /** `noun` names what is caught in a timeout's message ("mail", "a webhook delivery"). */
  constructor(private readonly noun: string) {
    this.events.setMaxListeners(0);
  }

  add(item: T): void {
    this.items.push(item);
    this.events.emit('item', item);
  }

  list(): readonly T[] {
    return this.items;
  }

  /** Resolves with the first item (already caught or still to come) that matches. */
  waitFor(what: string, match: (item: T) => boolean, timeoutInMs = 20_000): Promise<T> {
    const found = this.items.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const onItem = (item: T) => {
        if (!match(item)) return;
        clearTimeout(timer);
        this.events.off('item', onItem);
        resolve(item);
      };
      const timer = setTimeout(() => {
        this.events.off('item', onItem);
        reject(new Error(`timed out after ${timeoutInMs} ms waiting for ${this.noun}: ${what}`));
      }, timeoutInMs);
      this.events.on('item', onItem);
    });
  }
}
