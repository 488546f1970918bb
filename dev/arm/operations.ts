/**
 * Long-running operation records, served at the URLs Network RP hands out in `Azure-AsyncOperation`
 * (status document) and `Location` (operation result).
 */
import { randomUUID } from 'node:crypto';

import { NETWORK } from './resource-ids';

type OperationStatus = 'InProgress' | 'Succeeded' | 'Failed';

export interface OperationRecord {
  readonly id: string;
  readonly subscriptionId: string;
  readonly location: string;
  /** The api-version of the request that started it; Azure's operation URLs repeat it. */
  readonly apiVersion: string;
  status: OperationStatus;
  error?: { code: string; message: string };
  readonly startTime: string;
  endTime?: string;
}

/** The status document a client polls, as Azure shapes it. */
export interface OperationStatusBody {
  name: string;
  status: OperationStatus;
  startTime: string;
  endTime?: string;
  error?: { code: string; message: string; details: unknown[] };
}

// Finished operations are kept so a slow poller still finds them; the cap bounds a long sandbox run.
const RETAINED_OPERATIONS = 10_000;

export class OperationRegistry {
  private readonly operations = new Map<string, OperationRecord>();

  create(subscriptionId: string, location: string, apiVersion: string): OperationRecord {
    const record: OperationRecord = {
      id: randomUUID(),
      subscriptionId,
      location,
      apiVersion,
      status: 'InProgress',
      startTime: new Date().toISOString(),
    };
    this.operations.set(record.id, record);
    if (this.operations.size > RETAINED_OPERATIONS) {
      const oldest = this.operations.keys().next();
      if (!oldest.done) this.operations.delete(oldest.value);
    }
    return record;
  }

  get(id: string): OperationRecord | undefined {
    return this.operations.get(id.toLowerCase());
  }

  finish(record: OperationRecord, error?: { code: string; message: string }): void {
    record.status = error ? 'Failed' : 'Succeeded';
    record.endTime = new Date().toISOString();
    if (error) record.error = error;
  }

  static statusBody(record: OperationRecord): OperationStatusBody {
    const body: OperationStatusBody = { name: record.id, status: record.status, startTime: record.startTime };
    if (record.endTime !== undefined) body.endTime = record.endTime;
    if (record.error) body.error = { ...record.error, details: [] };
    return body;
  }

  /** Path (without host and query) of the status document. */
  static statusPath(record: OperationRecord): string {
    return `/subscriptions/${record.subscriptionId}/providers/${NETWORK}/locations/${record.location}/operations/${record.id}`;
  }

  /** Path (without host and query) of the operation result. */
  static resultPath(record: OperationRecord): string {
    return `/subscriptions/${record.subscriptionId}/providers/${NETWORK}/locations/${record.location}/operationResults/${record.id}`;
  }
}
