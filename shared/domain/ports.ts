/**
 * Ports: what the use cases need from the outside world. Adapters in shared/adapters implement them with the
 * Azure SDKs; tests implement them with the local emulators (or, for pure logic, in memory).
 */
import type {
  AccessRequest,
  AllowRuleSpec,
  AuditEvent,
  GrantRule,
  Policy,
  SecurityRuleView,
  VmNetworkPath,
} from './types';
import type { AuditRow } from './auditChain';
import type { AuditPage, AuditQuery } from './auditQuery';

/** A value read from a table, with the ETag to make the next write conditional. */
export interface Versioned<T> {
  value: T;
  etag: string;
}

export interface RequestRepository {
  /** Creates the row; fails if the id exists. Also records the request in the index of open requests. */
  create(request: AccessRequest): Promise<string>;
  get(id: string): Promise<Versioned<AccessRequest> | undefined>;
  /** Conditional replace; throws `ConcurrencyConflict` when the row changed since `etag` was read. */
  update(request: AccessRequest, etag: string): Promise<string>;
  /** Ids of requests not yet in a final state, oldest first (the reconciler's work list). */
  listOpen(): AsyncIterable<string>;
}

export interface PolicyRepository {
  /** The policies stored for any of the given (lower-cased) scopes. */
  getForScopes(scopes: string[]): Promise<Policy[]>;
  upsert(policy: Policy): Promise<void>;
  list(): AsyncIterable<Policy>;
}

export interface GrantRepository {
  upsert(rule: GrantRule): Promise<void>;
  list(requestId: string): Promise<GrantRule[]>;
}

export interface AuditLog {
  append(event: AuditEvent): Promise<void>;
}

/** Reading the audit trail: queries for auditors, and the raw rows of the hash chain for verification. */
export interface AuditTrail {
  /** One page of the events matching `query`, newest first. Throws `InvalidRequest` for a foreign token. */
  listEvents(
    query: AuditQuery,
    options: { pageSize: number; continuationToken?: string },
  ): Promise<AuditPage>;
  /** Every row of one day's partition (events and head), as stored. */
  readDay(day: string): Promise<AuditRow[]>;
  /** One event of a day by its seq, as stored. */
  findEvent(day: string, seq: number): Promise<AuditRow | undefined>;
  /** The days from `fromDay` to `toDay` (inclusive) the list of days names. */
  listDays(fromDay: string, toDay: string): Promise<string[]>;
}

/** The hops between functions (Storage Queues). */
export interface WorkQueues {
  /** Ask `evaluateRequest` to look at a request. */
  enqueueEvaluation(requestId: string): Promise<void>;
  /** Ask `applyGrant` to open access for an approved request. */
  enqueueGrant(requestId: string): Promise<void>;
}

/** What a scheduled expiry message carries. `expiresAt` lets a stale message (after an extension) be ignored. */
export interface ExpiryMessage {
  requestId: string;
  expiresAt: string;
}

/** Service Bus scheduled messages: one per grant, due at its expiry. */
export interface ExpiryScheduler {
  /** Returns the message's sequence number (as a decimal string: it is a 64-bit integer). */
  scheduleExpiry(message: ExpiryMessage, at: Date): Promise<string>;
  /** Cancels a scheduled message; an unknown or already delivered one is fine. */
  cancelExpiry(sequenceNumber: string): Promise<void>;
}

/** ARM, as far as JIT touches it. */
export interface NetworkGateway {
  /** The VM's private addresses and every NSG in front of it. Throws `GrantNotApplicable` if the VM is gone. */
  resolvePath(vmId: string): Promise<VmNetworkPath>;
  listRules(nsgId: string): Promise<SecurityRuleView[]>;
  getRule(nsgId: string, ruleName: string): Promise<SecurityRuleView | undefined>;
  /**
   * Creates or replaces a rule and waits for ARM to finish. Throws `PriorityTaken` when another rule holds the
   * priority, `TransientFailure` for what a retry may fix (busy NSG, throttling, 5xx, a failed operation).
   */
  putRule(nsgId: string, rule: AllowRuleSpec): Promise<void>;
  /** Deletes a rule and waits; a rule that is already gone is fine. */
  deleteRule(nsgId: string, ruleName: string): Promise<void>;
}

export interface Clock {
  now(): Date;
}
