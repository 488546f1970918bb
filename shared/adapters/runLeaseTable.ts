import { randomUUID } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import type { RunLeases, RunOutcome } from '../domain/ports';
import { getEntityOrUndefined, restStatus } from './tableStorage';

/** Shares the partition of the NSG write leases (nsgTable.ts): one place to look for who holds what. */
const PARTITION = 'lease';
const ROW_PREFIX = 'run|';

interface RunLeaseEntity {
  partitionKey: string;
  rowKey: string;
  /** A fresh id per run, and the host that runs it, for an operator reading the row. */
  owner: string;
  host: string;
  /** ISO time after which the lease is free for the taking. */
  until: string;
}

export interface RunLeaseOptions {
  /** How long a lease lasts unless renewed; a crashed holder blocks the work this long at most. */
  ttlInMs: number;
  /** Names the holder in the row (the instance's host name). */
  host: string;
}

/**
 * `JitNsgs`, partition `lease`, RowKey `run|<name>`: one row per lease, created by the taker and deleted by the
 * holder (conditionally on its ETag, so never someone else's), renewed every third of its TTL while the task runs.
 * An expired row is taken over with a conditional replace, so two takers cannot both win it.
 */
export class TableRunLeases implements RunLeases {
  constructor(
    private readonly client: TableClient,
    private readonly options: RunLeaseOptions,
  ) {}

  async runAlone<T>(name: string, task: () => Promise<T>): Promise<RunOutcome<T>> {
    const owner = randomUUID();
    const taken = await this.take(name, owner);
    if ('holder' in taken) return { ran: false, holder: taken.holder };
    let etag = taken.etag;
    let renewing: Promise<unknown> = Promise.resolve();
    const renewal = setInterval(
      () => {
        renewing = this.client
          .updateEntity(this.row(name, owner), 'Replace', { etag })
          .then((r) => (etag = r.etag ?? etag))
          .catch(() => clearInterval(renewal));
      },
      Math.max(100, Math.floor(this.options.ttlInMs / 3)),
    );
    renewal.unref();
    try {
      return { ran: true, value: await task() };
    } finally {
      clearInterval(renewal);
      await renewing;
      await this.client.deleteEntity(PARTITION, ROW_PREFIX + name, { etag }).catch(() => undefined);
    }
  }

  /** The new lease's ETag, or who holds it. */
  private async take(name: string, owner: string): Promise<{ etag: string } | { holder: string }> {
    try {
      return { etag: (await this.client.createEntity(this.row(name, owner))).etag ?? '' };
    } catch (err) {
      if (restStatus(err) !== 409) throw err;
    }
    const held = await getEntityOrUndefined<RunLeaseEntity>(this.client, PARTITION, ROW_PREFIX + name);
    if (!held) return { holder: 'unknown (released a moment ago)' };
    if (Date.parse(held.until) > Date.now()) return { holder: `${held.host} (run ${held.owner})` };
    try {
      const taken = await this.client.updateEntity(this.row(name, owner), 'Replace', { etag: held.etag });
      return { etag: taken.etag ?? '' };
    } catch (err) {
      // Someone else took the expired lease first, or its holder gave it back meanwhile.
      if (restStatus(err) === 412 || restStatus(err) === 404) return { holder: 'another instance' };
      throw err;
    }
  }

  private row(name: string, owner: string): RunLeaseEntity {
    return {
      partitionKey: PARTITION,
      rowKey: ROW_PREFIX + name,
      owner,
      host: this.options.host,
      until: new Date(Date.now() + this.options.ttlInMs).toISOString(),
    };
  }
}
