/**
 * In-memory implementations of every port in shared/domain/ports.ts (and shared/usecases/deps.ts), for unit tests
 * of the use cases. Each keeps what a person could look at afterwards — the request rows, the rules in each NSG,
 * the audit trail with its hash chain, the scheduled messages, the mail sent — so a test asserts on outcomes, never
 * on which methods were called. Where the domain has the rule (the audit chain, rule names, message ids), it is
 * used here rather than written again; where Azure has a behaviour the use cases depend on (ETags, duplicate
 * detection, ARM's answers to a busy, locked or conflicting NSG), it is reproduced with its source beside it, as
 * the emulators in dev/ do. test/support/world.ts puts them together into one set of dependencies.
 */
import { randomBytes } from 'node:crypto';
import type { ApprovalDecision } from '../../shared/domain/approval';
import { isAuditAction } from '../../shared/domain/auditActions';
import type { DayAnchor } from '../../shared/domain/auditAnchor';
import { HEAD_ROW_KEY, chainEvents, dayOf, eventColumns, headRow } from '../../shared/domain/auditChain';
import type { AuditRow, ChainAnchor, ChainHead } from '../../shared/domain/auditChain';
import { CHAIN_TAIL, auditRecordOf } from '../../shared/domain/auditQuery';
import type { AuditPage, AuditQuery, AuditRecord } from '../../shared/domain/auditQuery';
import type { BaselineRule, VmCoverage } from '../../shared/domain/baseline';
import {
  AlreadyDecided,
  ConcurrencyConflict,
  GrantNotApplicable,
  InvalidRequest,
  NetworkPermissionMissing,
  PriorityTaken,
  ResourceNotFound,
  ScopeLocked,
  TransientFailure,
} from '../../shared/domain/errors';
import type { NotificationMessage } from '../../shared/domain/notifications';
import type { PlatformAuthSettings } from '../../shared/domain/platformAuth';
import type {
  ApprovalRepository,
  AuditAnchorStore,
  AuditLog,
  AuditTrail,
  Clock,
  GrantRepository,
  Mailer,
  MailMessage,
  NetworkGateway,
  NotificationQueue,
  NsgLocks,
  NsgRegistry,
  PendingAudit,
  PlatformAuthReader,
  PolicyRepository,
  PolicySet,
  PolicyWrite,
  RequestListOptions,
  RequestPage,
  RequestRepository,
  ResourceLock,
  RunLeases,
  RunOutcome,
  ScheduledMessages,
  StoredRequest,
  WatchedNsg,
  WebhookClient,
  WorkQueues,
} from '../../shared/domain/ports';
import { sameRuleName } from '../../shared/domain/ruleNames';
import { scheduledMessageBody, scheduledMessageId } from '../../shared/domain/scheduledMessages';
import type {
  ApprovalDeadlineMessage,
  ExpiryMessage,
  SchedulePurpose,
  StartMessage,
} from '../../shared/domain/scheduledMessages';
import type {
  CounterName,
  EventAttributes,
  HistogramName,
  MetricAttributes,
  SignalEventName,
  Signals,
} from '../../shared/domain/signals';
import { isFinal, requesterKey } from '../../shared/domain/types';
import type {
  AccessRequest,
  AllowRuleSpec,
  AuditEvent,
  GrantRule,
  Policy,
  SecurityRuleView,
  VmNetworkPath,
} from '../../shared/domain/types';
import type { Logger } from '../../shared/usecases/deps';

const copy = <T>(value: T): T => structuredClone(value);

// ---- time -------------------------------------------------------------------------------------------------

/**
 * A clock that stands still until a test moves it. It starts at the real time (to the second) unless told otherwise:
 * request ids are ULIDs, which carry the real time they were made at, and the reconciler compares that with the clock.
 */
export class MemoryClock implements Clock {
  private ms: number;
  constructor(start: string | Date = new Date(Math.floor(Date.now() / 1000) * 1000)) {
    this.ms = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.ms);
  }
  /** Moves the clock on by this many seconds. */
  advance(seconds: number): Date {
    this.ms += seconds * 1000;
    return this.now();
  }
  set(at: string | Date): Date {
    this.ms = new Date(at).getTime();
    return this.now();
  }
  iso(): string {
    return this.now().toISOString();
  }
}

// ---- tables -----------------------------------------------------------------------------------------------

/**
 * JitRequests: rows with an ETag that changes on every write (Table Storage's optimistic concurrency,
 * https://learn.microsoft.com/rest/api/storageservices/update-entity2), the open index the reconciler walks, and
 * each requester's requests newest first.
 */
export class MemoryRequests implements RequestRepository {
  readonly rows = new Map<string, StoredRequest>();
  /** The open index: requests not yet final, or final with an event still to append (ULIDs: oldest first). */
  readonly open = new Set<string>();
  /** Writes of rows to refuse as a storage outage would (each one throws, then it works again). */
  failWrites = 0;
  private version = 0;

  async create(request: AccessRequest, pendingAudit?: PendingAudit): Promise<string> {
    this.failIfAsked();
    this.open.add(request.id);
    if (this.rows.has(request.id)) throw new ConcurrencyConflict(`request ${request.id} exists`);
    return this.put(request, pendingAudit);
  }
  async get(id: string): Promise<StoredRequest | undefined> {
    const row = this.rows.get(id);
    return row && copy(row);
  }
  async update(request: AccessRequest, etag: string, pendingAudit?: PendingAudit): Promise<string> {
    this.failIfAsked();
    if (this.rows.get(request.id)?.etag !== etag)
      throw new ConcurrencyConflict(`request ${request.id} changed since it was read`);
    // As the table adapter: a final request leaves the open index, unless its event still waits in the row.
    if (isFinal(request.status) && !pendingAudit) this.open.delete(request.id);
    return this.put(request, pendingAudit);
  }
  async *listOpen(): AsyncIterable<string> {
    yield* [...this.open].sort();
  }
  async forgetOpen(id: string): Promise<void> {
    this.open.delete(id);
  }
  async listByRequester(requester: string, options: RequestListOptions): Promise<RequestPage> {
    let offset = 0;
    if (options.continuationToken) {
      const m = /^after:(\d+)$/.exec(Buffer.from(options.continuationToken, 'base64url').toString());
      if (!m)
        throw new InvalidRequest([
          { field: 'continuationToken', reason: 'is not a token this service issued' },
        ]);
      offset = Number(m[1]);
    }
    const all = [...this.rows.values()]
      .map((r) => r.value)
      .filter((r) => requesterKey(r) === requester.toLowerCase())
      .filter((r) => !options.vmId || r.vmId.toLowerCase() === options.vmId.toLowerCase())
      .filter((r) => !options.status || r.status === options.status)
      .sort((a, b) => b.id.localeCompare(a.id));
    const items = all.slice(offset, offset + options.limit).map(copy);
    const next = offset + options.limit;
    return next < all.length
      ? { items, continuationToken: Buffer.from(`after:${next}`).toString('base64url') }
      : { items };
  }
  /** The request as stored now (not through any port), for assertions. */
  value(id: string): AccessRequest | undefined {
    const row = this.rows.get(id);
    return row && copy(row.value);
  }
  /** Makes the row change under a reader, as another writer would: its ETag moves on. */
  touch(id: string): void {
    const row = this.rows.get(id);
    if (row) row.etag = `W/"${++this.version}"`;
  }
  private put(request: AccessRequest, pendingAudit?: PendingAudit): string {
    const etag = `W/"${++this.version}"`;
    this.rows.set(request.id, {
      value: copy(request),
      etag,
      ...(pendingAudit ? { pendingAudit: copy(pendingAudit) } : {}),
    });
    return etag;
  }
  private failIfAsked(): void {
    if (this.failWrites > 0) {
      this.failWrites--;
      throw new TransientFailure('the request table did not answer');
    }
  }
}

/** JitPolicies: one row per scope, and a version that moves on with every change of the set. */
export class MemoryPolicies implements PolicyRepository {
  readonly rows = new Map<string, Policy>();
  private version = 0;

  async getForScopes(scopes: string[]): Promise<Policy[]> {
    return scopes.flatMap((s) => {
      const p = this.rows.get(s.toLowerCase());
      return p ? [copy(p)] : [];
    });
  }
  async upsert(policy: Policy): Promise<void> {
    this.rows.set(policy.scope.toLowerCase(), copy(policy));
    this.version++;
  }
  async *list(): AsyncIterable<Policy> {
    yield* [...this.rows.values()].map(copy);
  }
  async getSet(): Promise<PolicySet> {
    return {
      policies: [...this.rows.values()].map(copy),
      version: this.version ? String(this.version) : undefined,
    };
  }
  async applyChanges(changes: PolicyWrite[], version: string | undefined): Promise<void> {
    if ((version ?? '0') !== String(this.version))
      throw new ConcurrencyConflict('the policy set changed since it was read');
    for (const c of changes) {
      if (c.kind === 'put') this.rows.set(c.policy.scope.toLowerCase(), copy(c.policy));
      else this.rows.delete(c.scope.toLowerCase());
    }
    this.version++;
  }
  /** The scopes stored, sorted. */
  scopes(): string[] {
    return [...this.rows.keys()].sort();
  }
}

/** JitGrants: one row per grant and NSG, and the live index. */
export class MemoryGrants implements GrantRepository {
  readonly rows = new Map<string, GrantRule>();
  readonly live = new Set<string>();
  private key = (requestId: string, nsgId: string) => `${requestId}|${nsgId.toLowerCase()}`;

  async upsert(rule: GrantRule): Promise<void> {
    this.rows.set(this.key(rule.requestId, rule.nsgId), copy(rule));
  }
  async list(requestId: string): Promise<GrantRule[]> {
    return [...this.rows.values()].filter((g) => g.requestId === requestId).map(copy);
  }
  async get(requestId: string, nsgId: string): Promise<GrantRule | undefined> {
    const row = this.rows.get(this.key(requestId, nsgId));
    return row && copy(row);
  }
  async markLive(requestId: string): Promise<void> {
    this.live.add(requestId);
  }
  async clearLive(requestId: string): Promise<void> {
    this.live.delete(requestId);
  }
  async *listLive(): AsyncIterable<string> {
    yield* [...this.live];
  }
  /** The rows of one grant, by NSG, for assertions. */
  of(requestId: string): GrantRule[] {
    return [...this.rows.values()].filter((g) => g.requestId === requestId).map(copy);
  }
}

/** JitApprovals: one decision per approver and request, written once (a conditional insert). */
export class MemoryDecisions implements ApprovalRepository {
  readonly rows: ApprovalDecision[] = [];
  async record(decision: ApprovalDecision): Promise<void> {
    if (this.rows.some((d) => d.requestId === decision.requestId && d.approver === decision.approver))
      throw new AlreadyDecided(`${decision.approver} has decided on ${decision.requestId} already`);
    this.rows.push(copy(decision));
  }
  async get(requestId: string, approver: string): Promise<ApprovalDecision | undefined> {
    const d = this.rows.find((x) => x.requestId === requestId && x.approver === approver);
    return d && copy(d);
  }
  async list(requestId: string): Promise<ApprovalDecision[]> {
    return this.rows.filter((d) => d.requestId === requestId).map(copy);
  }
}

/**
 * JitAudit: the append-only trail, chained per UTC day by the domain's own `chainEvents` (each event links to the one
 * before, each day's first to the latest earlier day), with the list of days, as the table adapter keeps them.
 * `rows` is the stored table, day partition by day partition: a test may tamper with it and ask for a verification.
 */
export class MemoryAudit implements AuditLog, AuditTrail {
  /** Day → its rows (events, then the head row), as stored. */
  readonly days = new Map<string, AuditRow[]>();
  /** Appends to refuse as a storage outage would (each one throws, then it works again). */
  failAppends = 0;
  /** Days taken off the list of days by hand (their rows stay): what hides a day from time-range queries. */
  readonly unlisted = new Set<string>();

  constructor(private readonly clock: Clock) {}

  async append(event: AuditEvent): Promise<void> {
    eventColumns(event); // refuses what the table adapter refuses (a chain column in the event)
    // Stricter than the table: an action missing from the vocabulary (and docs/audit.md) fails the unit test that
    // writes it, so every action any use case writes under test is one the list explains.
    if (!isAuditAction(event.action))
      throw new Error(
        `audit action ${String(event.action)} is not in AUDIT_ACTIONS (shared/domain/auditActions.ts)`,
      );
    if (this.failAppends > 0) {
      this.failAppends--;
      throw new TransientFailure('the audit table did not answer');
    }
    const at = this.clock.now();
    const day = dayOf(at.getTime());
    const rows = this.days.get(day) ?? [];
    const head = rows.find((r) => r.rowKey === HEAD_ROW_KEY);
    const previous = head && { seq: head.seq, hash: head.hash, time: head.time };
    const { rows: added, head: next } = chainEvents(
      day,
      previous as ChainHead | undefined,
      previous ? undefined : this.anchorBefore(day),
      [{ event, at }],
    );
    this.days.set(day, [...rows.filter((r) => r.rowKey !== HEAD_ROW_KEY), ...added, headRow(day, next)]);
  }

  async hasEvent(requestId: string, eventId: string): Promise<boolean> {
    return this.events().some((e) => e.requestId === requestId && e.eventId === eventId);
  }

  async listEvents(
    query: AuditQuery,
    options: { pageSize: number; continuationToken?: string },
  ): Promise<AuditPage> {
    let offset = 0;
    if (options.continuationToken) {
      const m = /^at:(\d+)$/.exec(Buffer.from(options.continuationToken, 'base64url').toString());
      if (!m)
        throw new InvalidRequest([
          { field: 'continuationToken', reason: 'is not a token this service issued' },
        ]);
      offset = Number(m[1]);
    }
    const matching = this.records()
      .filter((r) => !query.from || Date.parse(r.time) >= query.from.getTime())
      .filter((r) => !query.to || Date.parse(r.time) < query.to.getTime())
      .filter((r) => !query.vm || r.vm === query.vm)
      .filter((r) => !query.actor || r.actor === query.actor)
      .filter((r) => !query.requestId || r.requestId === query.requestId)
      .reverse();
    const items = matching.slice(offset, offset + options.pageSize);
    const next = offset + options.pageSize;
    return next < matching.length
      ? { items, continuationToken: Buffer.from(`at:${next}`).toString('base64url') }
      : { items };
  }

  async readDay(day: string): Promise<AuditRow[]> {
    return (this.days.get(day) ?? []).map(copy);
  }
  async findEvent(day: string, seq: number): Promise<AuditRow | undefined> {
    const row = this.days.get(day)?.find((r) => r.rowKey !== HEAD_ROW_KEY && r.seq === seq);
    return row && copy(row);
  }
  async listDays(fromDay: string, toDay: string): Promise<string[]> {
    return [...this.days.keys()].filter((d) => d >= fromDay && d <= toDay && !this.unlisted.has(d)).sort();
  }

  /** Every event, oldest first, as its fields were appended (with the eventId the outbox gave it). */
  events(): AuditEvent[] {
    return this.records().map((r) => {
      const e: Record<string, unknown> = { ...r };
      for (const k of ['time', 'day', 'seq', ...CHAIN_TAIL]) delete e[k];
      return e as unknown as AuditEvent;
    });
  }
  /** The actions recorded, oldest first; only those about one request when it is named. */
  actions(requestId?: string): string[] {
    return this.events()
      .filter((e) => !requestId || e.requestId === requestId)
      .map((e) => e.action);
  }

  /** Every event row as the API returns it (`AuditRecord`), oldest first. */
  private records(): AuditRecord[] {
    return [...this.days.keys()]
      .sort()
      .flatMap((day) => (this.days.get(day) ?? []).filter((r) => r.rowKey !== HEAD_ROW_KEY))
      .sort((a, b) => String(a.time).localeCompare(String(b.time)) || Number(a.seq) - Number(b.seq))
      .map(auditRecordOf);
  }

  /** The last event of the latest day before `day`: what a new day's first event links to. */
  private anchorBefore(day: string): ChainAnchor | undefined {
    const earlier = [...this.days.keys()]
      .filter((d) => d < day)
      .sort()
      .at(-1);
    const head = earlier && this.days.get(earlier)?.find((r) => r.rowKey === HEAD_ROW_KEY);
    return earlier && head ? { day: earlier, seq: Number(head.seq), hash: String(head.hash) } : undefined;
  }
}

/** The anchor container: written once per day, never overwritten (a time-based retention policy). */
export class MemoryAnchors implements AuditAnchorStore {
  readonly blobs = new Map<string, DayAnchor | 'invalid'>();
  async create(anchor: DayAnchor): Promise<'created' | 'exists'> {
    if (this.blobs.has(anchor.day)) return 'exists';
    this.blobs.set(anchor.day, copy(anchor));
    return 'created';
  }
  async get(day: string): Promise<DayAnchor | 'invalid' | undefined> {
    const a = this.blobs.get(day);
    return a && copy(a);
  }
  async listDays(fromDay: string, toDay: string): Promise<string[]> {
    return [...this.blobs.keys()].filter((d) => d >= fromDay && d <= toDay).sort();
  }
}

/** JitNsgs: the watched NSGs, the baseline rules to keep and the VMs policies cover. */
export class MemoryNsgRegistry implements NsgRegistry {
  readonly watched = new Map<string, WatchedNsg>();
  readonly baselines: BaselineRule[] = [];
  readonly coverage = new Map<string, VmCoverage>();

  async watchNsg(nsgId: string, protects: { ports: number[]; addresses: string[] }): Promise<void> {
    const id = nsgId.toLowerCase();
    const w = this.watched.get(id) ?? { nsgId: id, ports: [], addresses: [], driftReported: [] };
    w.ports = [...new Set([...w.ports, ...protects.ports])].sort((a, b) => a - b);
    w.addresses = [...new Set([...w.addresses, ...protects.addresses])].sort();
    this.watched.set(id, w);
  }
  async *listWatchedNsgs(): AsyncIterable<WatchedNsg> {
    yield* [...this.watched.values()].map(copy);
  }
  async getWatchedNsg(nsgId: string): Promise<WatchedNsg | undefined> {
    const w = this.watched.get(nsgId.toLowerCase());
    return w && copy(w);
  }
  async markSwept(nsgId: string, at: string, driftReported: string[]): Promise<void> {
    const w = this.watched.get(nsgId.toLowerCase());
    if (w) Object.assign(w, { reconciledAt: at, driftReported: [...driftReported] });
  }
  async forgetNsg(nsgId: string): Promise<void> {
    this.watched.delete(nsgId.toLowerCase());
  }
  async upsertBaseline(rule: BaselineRule): Promise<void> {
    const i = this.baselines.findIndex((b) => sameBaseline(b, rule));
    if (i >= 0) this.baselines[i] = copy(rule);
    else this.baselines.push(copy(rule));
  }
  async deleteBaseline(rule: BaselineRule): Promise<void> {
    const i = this.baselines.findIndex((b) => sameBaseline(b, rule));
    if (i >= 0) this.baselines.splice(i, 1);
  }
  async listBaselinesInNsg(nsgId: string): Promise<BaselineRule[]> {
    return this.baselines.filter((b) => b.nsgId.toLowerCase() === nsgId.toLowerCase()).map(copy);
  }
  async listBaselinesOfVm(vmId: string): Promise<BaselineRule[]> {
    return this.baselines.filter((b) => b.vmId.toLowerCase() === vmId.toLowerCase()).map(copy);
  }
  async upsertCoverage(coverage: VmCoverage): Promise<void> {
    this.coverage.set(coverage.vmId.toLowerCase(), copy(coverage));
  }
  async deleteCoverage(vmId: string): Promise<void> {
    this.coverage.delete(vmId.toLowerCase());
  }
  async *listCoverage(): AsyncIterable<VmCoverage> {
    yield* [...this.coverage.values()].map(copy);
  }
}

const sameBaseline = (a: BaselineRule, b: BaselineRule) =>
  a.nsgId.toLowerCase() === b.nsgId.toLowerCase() &&
  sameRuleName(a.ruleName, b.ruleName) &&
  a.vmId.toLowerCase() === b.vmId.toLowerCase();

// ---- queues and scheduled messages ------------------------------------------------------------------------

/** The Storage queues between functions: what is waiting in each, oldest first. */
export class MemoryWorkQueues implements WorkQueues {
  readonly evaluations: string[] = [];
  readonly grants: string[] = [];
  /** Sends to refuse (each one throws, then it works again). */
  failSends = 0;
  async enqueueEvaluation(requestId: string): Promise<void> {
    this.failIfAsked();
    this.evaluations.push(requestId);
  }
  async enqueueGrant(requestId: string): Promise<void> {
    this.failIfAsked();
    this.grants.push(requestId);
  }
  private failIfAsked(): void {
    if (this.failSends > 0) {
      this.failSends--;
      throw new TransientFailure('the queue did not answer');
    }
  }
}

/** One scheduled Service Bus message, as the queue holds it. */
export interface ScheduledMessage {
  sequenceNumber: string;
  purpose: SchedulePurpose;
  messageId: string;
  requestId: string;
  /** The time the message is for (its id and body say it). */
  dueAt: string;
  /** When Service Bus enqueues it, which is when its handler runs: `dueAt` unless the scheduler asked earlier. */
  enqueueAt: string;
  body: ExpiryMessage | StartMessage | ApprovalDeadlineMessage;
  state: 'scheduled' | 'cancelled' | 'delivered';
}

/**
 * Service Bus scheduled messages for every purpose (expiry, start, approval deadline), with sequence numbers and
 * cancel. The queues require duplicate detection, and the adapter hands back the live message's number when a
 * retry schedules the same id again (shared/adapters/serviceBusScheduledMessages.ts,
 * https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection): so does this. Cancelling a message
 * already delivered or unknown is fine
 * (https://learn.microsoft.com/javascript/api/@azure/service-bus/servicebussender#@azure-service-bus-servicebussender-cancelscheduledmessages).
 */
export class MemoryScheduledMessages implements ScheduledMessages {
  readonly messages: ScheduledMessage[] = [];
  private next = 1000;

  /** One port for every purpose: the request's message for `purpose`, due at `dueAt`, with the body its handler reads. */
  async schedule(
    purpose: SchedulePurpose,
    requestId: string,
    dueAt: string,
    enqueueAt = dueAt,
  ): Promise<string> {
    const messageId = scheduledMessageId(purpose, requestId, dueAt);
    const live = this.messages.find((m) => m.messageId === messageId && m.state === 'scheduled');
    if (live) return live.sequenceNumber;
    const sequenceNumber = String(++this.next);
    this.messages.push({
      sequenceNumber,
      purpose,
      messageId,
      requestId,
      dueAt: new Date(dueAt).toISOString(),
      enqueueAt: new Date(enqueueAt).toISOString(),
      body: scheduledMessageBody(purpose, requestId, dueAt),
      state: 'scheduled',
    });
    return sequenceNumber;
  }
  async cancel(_purpose: SchedulePurpose, sequenceNumber: string): Promise<void> {
    this.cancelSequence(sequenceNumber);
  }

  /** Messages still to come (not cancelled, not delivered), optionally of one purpose and request. */
  pending(purpose?: SchedulePurpose, requestId?: string): ScheduledMessage[] {
    return this.messages.filter(
      (m) =>
        m.state === 'scheduled' &&
        (!purpose || m.purpose === purpose) &&
        (!requestId || m.requestId === requestId),
    );
  }
  /** Takes the scheduled messages enqueued by `now` off the queue, earliest first, as Service Bus enqueues them. */
  takeDue(now: Date): ScheduledMessage[] {
    const due = this.pending()
      .filter((m) => Date.parse(m.enqueueAt) <= now.getTime())
      .sort((a, b) => a.enqueueAt.localeCompare(b.enqueueAt));
    for (const m of due) m.state = 'delivered';
    return due.map(copy);
  }

  private cancelSequence(sequenceNumber: string): void {
    const m = this.messages.find((x) => x.sequenceNumber === sequenceNumber);
    if (m?.state === 'scheduled') m.state = 'cancelled';
  }
}

/** jit-notifications and its poison queue. */
export class MemoryNotificationQueue implements NotificationQueue {
  readonly queued: Array<{ message: NotificationMessage; delayInSeconds?: number }> = [];
  readonly poisoned: Array<{ message: NotificationMessage; error: string }> = [];
  async send(message: NotificationMessage, delayInSeconds?: number): Promise<void> {
    this.queued.push({ message: copy(message), ...(delayInSeconds ? { delayInSeconds } : {}) });
  }
  async deadLetter(message: NotificationMessage, error: string): Promise<void> {
    this.poisoned.push({ message: copy(message), error });
  }
}

// ---- ARM ------------------------------------------------------------------------------------------------------

/** An NSG as the gateway holds it. */
export interface MemoryNsg {
  id: string;
  rules: SecurityRuleView[];
  flushConnection: boolean;
  /** Management locks on the NSG, its resource group or its subscription. */
  locks: ResourceLock[];
  /** Writes (or deletes) still to be refused as busy: ARM runs one operation per NSG at a time. */
  busy: number;
}

/**
 * ARM as JIT sees it: VMs with their network paths, and NSGs with their rules. It answers as ARM does where the use
 * cases depend on it:
 * - a rule at a priority and direction another rule holds is refused (`SecurityRuleConflict`, dev/arm/errors.ts);
 * - a management lock refuses deletes (`CanNotDelete`) or writes and deletes (`ReadOnly`) with `409 ScopeLocked`
 *   (https://learn.microsoft.com/azure/azure-resource-manager/management/lock-resources);
 * - a write to an NSG with another operation running is refused `409 AnotherOperationInProgress`, which a retry fixes
 *   (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling);
 * - a missing VM or NSG is a 404, an action the role does not grant a 403 (`AuthorizationFailed`);
 * - rule names compare without regard to case, like every ARM name.
 * Each answer reaches the use cases as the error the ARM adapter maps it to (shared/adapters/armNetwork.ts).
 */
export class MemoryNetwork implements NetworkGateway {
  readonly vms = new Map<string, VmNetworkPath>();
  readonly nsgs = new Map<string, MemoryNsg>();
  /** Actions the deployment's identity may not perform, per lower-cased resource id (`*` for every one). */
  readonly denied = new Map<string, Set<string>>();
  /** Role assignments `listPermissions` reports on every NSG. */
  permissions: Array<{ actions: string[]; notActions: string[] }> = [{ actions: ['*'], notActions: [] }];
  /** ARM is down: every call fails transiently while set. */
  unreachable = false;

  /** Adds a VM and creates the NSGs in its path that do not exist yet. */
  addVm(path: VmNetworkPath): void {
    this.vms.set(path.vmId.toLowerCase(), copy(path));
    for (const nsgId of path.nsgIds) this.addNsg(nsgId);
  }
  removeVm(vmId: string): void {
    this.vms.delete(vmId.toLowerCase());
  }
  addNsg(nsgId: string, rules: SecurityRuleView[] = []): MemoryNsg {
    const id = nsgId.toLowerCase();
    const existing = this.nsgs.get(id);
    if (existing) return existing;
    const nsg: MemoryNsg = { id: nsgId, rules: copy(rules), flushConnection: false, locks: [], busy: 0 };
    this.nsgs.set(id, nsg);
    return nsg;
  }
  removeNsg(nsgId: string): void {
    this.nsgs.delete(nsgId.toLowerCase());
  }
  /** The NSG (throws for an unknown one, which is a mistake in the test). */
  nsg(nsgId: string): MemoryNsg {
    const nsg = this.nsgs.get(nsgId.toLowerCase());
    if (!nsg) throw new Error(`no NSG ${nsgId} in this test's network`);
    return nsg;
  }
  /** The rules of one NSG, as they are now. */
  rules(nsgId: string): SecurityRuleView[] {
    return copy(this.nsg(nsgId).rules);
  }
  /** The rules of one NSG whose names JIT gives its own (`jit-…`). */
  jitRules(nsgId: string): SecurityRuleView[] {
    return this.rules(nsgId).filter((r) => r.name.toLowerCase().startsWith('jit-'));
  }
  /** Puts a management lock on an NSG (as if on it, or inherited from a scope above). */
  lock(nsgId: string, level: ResourceLock['level'], name = 'do-not-touch'): void {
    this.nsg(nsgId).locks.push({ name, level, scope: nsgId.toLowerCase() });
  }
  unlock(nsgId: string): void {
    this.nsg(nsgId).locks = [];
  }
  /** Refuses the next `times` writes or deletes to the NSG as busy. */
  makeBusy(nsgId: string, times: number): void {
    this.nsg(nsgId).busy = times;
  }
  /** The deployment's role does not grant `action` on `resourceId` (`*`: anything there). */
  deny(resourceId: string, action = '*'): void {
    const set = this.denied.get(resourceId.toLowerCase()) ?? new Set<string>();
    set.add(action);
    this.denied.set(resourceId.toLowerCase(), set);
  }

  async getVmId(vmId: string): Promise<string> {
    this.reach();
    this.authorize(vmId, 'Microsoft.Compute/virtualMachines/read');
    const path = this.vms.get(vmId.toLowerCase());
    if (!path) throw new ResourceNotFound(`not found reading VM ${vmId}`);
    return path.vmId;
  }
  async resolvePath(vmId: string): Promise<VmNetworkPath> {
    this.reach();
    this.authorize(vmId, 'Microsoft.Compute/virtualMachines/read');
    const path = this.vms.get(vmId.toLowerCase());
    if (!path) throw new ResourceNotFound(`not found reading VM ${vmId}`);
    return copy(path);
  }
  async *listVms(scope: string): AsyncIterable<string> {
    this.reach();
    const prefix = scope.toLowerCase();
    for (const path of this.vms.values()) {
      const id = path.vmId.toLowerCase();
      if (id === prefix || id.startsWith(`${prefix}/`)) yield path.vmId;
    }
  }
  async resolvePathsInScope(scope: string): Promise<{ paths: VmNetworkPath[]; armCalls: number }> {
    const paths: VmNetworkPath[] = [];
    for await (const id of this.listVms(scope)) paths.push(await this.resolvePath(id));
    return { paths, armCalls: 3 };
  }
  async listRules(nsgId: string): Promise<SecurityRuleView[]> {
    this.reach();
    this.authorize(nsgId, 'Microsoft.Network/networkSecurityGroups/securityRules/read');
    return copy(this.existing(nsgId).rules);
  }
  async getRule(nsgId: string, ruleName: string): Promise<SecurityRuleView | undefined> {
    this.reach();
    const rule = this.existing(nsgId).rules.find((r) => sameRuleName(r.name, ruleName));
    return rule && copy(rule);
  }
  async putRule(nsgId: string, spec: AllowRuleSpec): Promise<void> {
    this.reach();
    this.authorize(nsgId, 'Microsoft.Network/networkSecurityGroups/securityRules/write');
    const nsg = this.existing(nsgId);
    this.refuseLocked(nsg, 'write');
    this.refuseBusy(nsg);
    const holder = nsg.rules.find(
      (r) => r.direction === 'Inbound' && r.priority === spec.priority && !sameRuleName(r.name, spec.name),
    );
    if (holder)
      throw new PriorityTaken(
        `Security rule ${holder.name} conflicts with rule ${spec.name}. Rules cannot have the same Priority and Direction.`,
      );
    // A description is up to 140 characters
    // (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules); ARM
    // answers 400, which the adapter reports as not applicable (dev/arm/validation.ts has the emulator's answer).
    if ((spec.description?.length ?? 0) > 140)
      throw new GrantNotApplicable(
        `Security rule ${spec.name} has a description of ${spec.description.length} characters. The description can be up to 140 characters long.`,
      );
    const rule: SecurityRuleView = {
      name: spec.name,
      priority: spec.priority,
      direction: 'Inbound',
      access: spec.access ?? 'Allow',
      protocol: spec.protocol,
      sourceAddressPrefixes: [spec.sourceAddressPrefix],
      destinationAddressPrefixes: [...spec.destinationAddressPrefixes],
      destinationPortRanges: [...spec.destinationPortRanges],
      description: spec.description,
      provisioningState: 'Succeeded',
    };
    const i = nsg.rules.findIndex((r) => sameRuleName(r.name, spec.name));
    if (i >= 0) nsg.rules[i] = rule;
    else nsg.rules.push(rule);
  }
  async deleteRule(nsgId: string, ruleName: string): Promise<void> {
    this.reach();
    this.authorize(nsgId, 'Microsoft.Network/networkSecurityGroups/securityRules/delete');
    const nsg = this.nsgs.get(nsgId.toLowerCase());
    if (!nsg) return; // a rule in an NSG that is gone is gone too
    this.refuseLocked(nsg, 'delete');
    this.refuseBusy(nsg);
    nsg.rules = nsg.rules.filter((r) => !sameRuleName(r.name, ruleName));
  }
  async listPermissions(resourceId: string): Promise<Array<{ actions: string[]; notActions: string[] }>> {
    this.reach();
    this.authorize(resourceId, 'Microsoft.Authorization/permissions/read');
    return copy(this.permissions);
  }
  async listLocks(nsgId: string): Promise<ResourceLock[]> {
    this.reach();
    return copy(this.existing(nsgId).locks);
  }
  async enableFlushConnection(nsgId: string): Promise<boolean> {
    this.reach();
    const nsg = this.existing(nsgId);
    this.refuseLocked(nsg, 'write');
    if (nsg.flushConnection) return false;
    nsg.flushConnection = true;
    return true;
  }

  private reach(): void {
    if (this.unreachable) throw new TransientFailure('ARM did not answer (503)');
  }
  private existing(nsgId: string): MemoryNsg {
    const nsg = this.nsgs.get(nsgId.toLowerCase());
    if (!nsg) throw new ResourceNotFound(`not found reading NSG ${nsgId}`);
    return nsg;
  }
  private authorize(resourceId: string, action: string): void {
    const denied = this.denied.get(resourceId.toLowerCase());
    if (denied && (denied.has('*') || denied.has(action)))
      throw new NetworkPermissionMissing(action, resourceId.toLowerCase());
  }
  private refuseLocked(nsg: MemoryNsg, operation: 'write' | 'delete'): void {
    const refusing = nsg.locks.filter((l) => l.level === 'ReadOnly' || operation === 'delete');
    if (refusing.length)
      throw new ScopeLocked(
        operation,
        refusing.map((l) => l.scope),
        `The scope '${nsg.id}' cannot perform ${operation} operation because following scope(s) are locked: ${refusing.map((l) => `'${l.scope}'`).join(', ')}.`,
      );
  }
  private refuseBusy(nsg: MemoryNsg): void {
    if (nsg.busy > 0) {
      nsg.busy--;
      throw new TransientFailure(`AnotherOperationInProgress on ${nsg.id}`);
    }
  }
}

// ---- locks and leases -------------------------------------------------------------------------------------

/** One JIT writer per NSG: tasks on the same NSG run one after another. */
export class MemoryNsgLocks implements NsgLocks {
  private readonly tails = new Map<string, Promise<unknown>>();
  /** NSGs whose lease another instance holds for longer than a writer waits. */
  readonly heldElsewhere = new Set<string>();

  withLock<T>(nsgId: string, task: () => Promise<T>): Promise<T> {
    const key = nsgId.toLowerCase();
    if (this.heldElsewhere.has(key))
      return Promise.reject(new TransientFailure(`the NSG ${nsgId} stayed busy with another writer`));
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task, task);
    this.tails.set(
      key,
      result.catch(() => undefined),
    );
    return result;
  }
}

/** Leases on work one instance at a time may do; `holders` are other instances' unexpired leases. */
export class MemoryRunLeases implements RunLeases {
  readonly holders = new Map<string, string>();
  async runAlone<T>(name: string, task: () => Promise<T>): Promise<RunOutcome<T>> {
    const holder = this.holders.get(name);
    if (holder) return { ran: false, holder };
    this.holders.set(name, 'this instance');
    try {
      return { ran: true, value: await task() };
    } finally {
      this.holders.delete(name);
    }
  }
}

// ---- mail, webhooks, signals, logs ------------------------------------------------------------------------

/** The mailbox every mail lands in. */
export class MemoryMailer implements Mailer {
  readonly sent: MailMessage[] = [];
  /** Sends to refuse as a mail server that does not answer (each one throws, then it works again). */
  failSends = 0;
  async send(message: MailMessage): Promise<void> {
    if (this.failSends > 0) {
      this.failSends--;
      throw new Error('the mail server did not answer');
    }
    this.sent.push(copy(message));
  }
  /** Mails to one address, oldest first. */
  to(address: string): MailMessage[] {
    return this.sent.filter((m) => m.to.some((t) => t.toLowerCase() === address.toLowerCase()));
  }
}

/** The receivers of webhook and chat deliveries: what was posted, and how each answers. */
export class MemoryWebhooks implements WebhookClient {
  readonly posts: Array<{ url: string; body: string; headers: Record<string, string> }> = [];
  /** The answer to the next post; a status, or `unreachable` for a network error. */
  answer: (url: string) => number | 'unreachable' = () => 200;
  async post(url: string, body: string, headers: Record<string, string>) {
    this.posts.push({ url, body, headers: { ...headers } });
    const status = this.answer(url);
    if (status === 'unreachable')
      throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'FetchError' });
    return { status, body: status >= 300 ? 'no' : '' };
  }
}

/** The events and metrics operators would see. */
export class MemorySignals implements Signals {
  readonly events: Array<{ name: string; attributes: Record<string, unknown> }> = [];
  readonly metrics: Array<{ name: string; value: number; attributes: Record<string, unknown> }> = [];
  event<N extends SignalEventName>(name: N, attributes: EventAttributes<N>): void {
    this.events.push({ name, attributes: { ...attributes } });
  }
  add<N extends CounterName>(name: N, value: number, attributes?: MetricAttributes<N>): void {
    this.metrics.push({ name, value, attributes: { ...attributes } });
  }
  record<N extends HistogramName>(name: N, value: number, attributes?: MetricAttributes<N>): void {
    this.metrics.push({ name, value, attributes: { ...attributes } });
  }
  named(name: string): Array<Record<string, unknown>> {
    return this.events.filter((e) => e.name === name).map((e) => e.attributes);
  }
}

/** The log lines an operator would read. */
export class MemoryLog implements Logger {
  readonly lines: Array<{
    level: 'info' | 'warn' | 'error';
    event: string;
    fields: Record<string, unknown>;
  }> = [];
  info(event: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'info', event, fields });
  }
  warn(event: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'warn', event, fields });
  }
  error(event: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'error', event, fields });
  }
  /** Events logged at a level, oldest first. */
  at(level: 'info' | 'warn' | 'error'): string[] {
    return this.lines.filter((l) => l.level === level).map((l) => l.event);
  }
}

/** This app's App Service Authentication settings, as ARM would hold them. */
export class MemoryPlatformAuth implements PlatformAuthReader {
  constructor(public settings: PlatformAuthSettings) {}
  async getAuthSettings(): Promise<PlatformAuthSettings> {
    return copy(this.settings);
  }
}

/** A random 32-byte approval signing key, as JIT_APPROVAL_KEY holds one. */
export function signingKey(kid = 'k1'): { kid: string; secret: Uint8Array } {
  return { kid, secret: new Uint8Array(randomBytes(32)) };
}

// ---- races ------------------------------------------------------------------------------------------------

/** A call held before it runs: `reached` settles once it has come, and it runs on `release()`. */
export interface HeldCall {
  readonly reached: Promise<void>;
  release(): void;
}

type AsyncMethod = (...args: never[]) => Promise<unknown>;
type AsyncMethodOf<T> = { [K in keyof T]: T[K] extends AsyncMethod ? K : never }[keyof T];
type ArgsOf<F> = F extends (...args: infer A) => Promise<unknown> ? A : never;

/**
 * Holds the next call of one of a port's methods (the first for which `when` holds) until the test releases it;
 * every other call runs at once. Two use cases racing on one request are then driven into exactly the
 * interleaving a test names, every time, with no timing involved: start one, await `reached`, run the other, then
 * `release()`.
 */
export function holdNextCall<T extends object, K extends AsyncMethodOf<T>>(
  port: T,
  method: K,
  when: (...args: ArgsOf<T[K]>) => boolean = () => true,
): HeldCall {
  const real = (port[method] as (...args: ArgsOf<T[K]>) => Promise<unknown>).bind(port);
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  let armed = true;
  Object.assign(port, {
    [method]: async (...args: ArgsOf<T[K]>) => {
      if (armed && when(...args)) {
        armed = false;
        reach();
        await released;
      }
      return real(...args);
    },
  });
  return { reached, release };
}
