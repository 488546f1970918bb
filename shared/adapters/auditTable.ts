import type { TableClient } from '@azure/data-tables';
import { monotonicFactory } from 'ulid';
import type { AuditLog, Clock } from '../domain/ports';
import type { AuditEvent } from '../domain/types';

/**
 * `JitAudit`, append-only. PartitionKey = UTC day `yyyy-MM-dd` (a time range is a few partition scans),
 * RowKey = `<ISO time>_<ulid>` (sorts by time, unique across writers). Columns are named for a person reading
 * them in Storage Explorer: time, actor, action, vm, ports, sourcePrefix, requestId, detail, clientAddress.
 */
export class AuditTable implements AuditLog {
  private readonly ulid = monotonicFactory();

  constructor(
    private readonly client: TableClient,
    private readonly clock: Clock,
  ) {}

  async append(event: AuditEvent): Promise<void> {
    const now = this.clock.now();
    const time = now.toISOString();
    const entity = {
      partitionKey: time.slice(0, 10),
      rowKey: `${time}_${this.ulid(now.getTime())}`,
      time,
      actor: event.actor,
      action: event.action,
      requestId: event.requestId,
      vm: event.vm,
      ports: event.ports?.join(','),
      sourcePrefix: event.sourcePrefix,
      detail: event.detail,
      clientAddress: event.clientAddress,
    };
    // createEntity, never upsert: the writer must not be able to overwrite history.
    await this.client.createEntity(
      Object.fromEntries(Object.entries(entity).filter(([, v]) => v !== undefined)) as typeof entity,
    );
  }
}
