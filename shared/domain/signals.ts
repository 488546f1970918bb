/**
 * What operators watch: the structured events (Application Insights `customEvents`) and metrics (`customMetrics`)
 * the app emits, each with the attributes it carries (`customDimensions`). This is the one list: the alert rules and
 * the workbook in infra/ are checked against it (test/infra/consistency.test.ts), and docs/operations.md lists it.
 * Names are `jit.<subject>.<what>`; attribute names are camelCase, as in the audit trail.
 *
 * Pure: what to emit for a request's move is decided here (`signalsOfTransition`), without I/O.
 */
import type { AccessRequest, RequestStatus } from './types';

export const SIGNAL_EVENTS = {
  'jit.request.changed': {
    what: 'a request reached a status (submitted included): the series behind "requests by status"',
    attributes: [
      'requestId',
      'vm',
      'requester',
      'status',
      'previousStatus',
      'policy',
      'approvalMode',
      'actor',
    ],
  },
  'jit.grant.opened': {
    what: 'access went live: its rules are in place in every NSG in front of the VM',
    attributes: [
      'requestId',
      'vm',
      'requester',
      'ports',
      'policy',
      'approvalMode',
      'expiresAt',
      'openLatencyInSeconds',
    ],
  },
  'jit.grant.extended': {
    what: 'live access was extended: its new expiresAt (the "open past expiry" alert follows it)',
    attributes: ['requestId', 'vm', 'expiresAt', 'actor'],
  },
  'jit.grant.closed': {
    what: 'access ended: expired (by its message or by the reconciler, closedBy) or revoked',
    attributes: ['requestId', 'vm', 'requester', 'status', 'closedBy', 'expiresAt', 'closeLagInSeconds'],
  },
  'jit.grant.failed': {
    what: 'a grant could not be applied or completed; reason is the text the requester sees',
    attributes: ['requestId', 'vm', 'requester', 'reasonCode', 'reason', 'actor'],
  },
  'jit.grant.close-blocked': {
    what:
      "a grant's allow rule could be neither deleted nor turned to Deny (a ReadOnly lock, or Azure RBAC refusing " +
      'both): the port is still open; emitted on every try until that is lifted',
    attributes: ['requestId', 'vm', 'nsg', 'rule', 'reason'],
  },
  'jit.grant.neutralised': {
    what:
      "a lock (CanNotDelete) or Azure RBAC refused deleting a grant's rule, so it was turned to Deny: it lets nothing " +
      'in, but stays in the NSG (counting against its limits) until the delete is allowed; emitted on every retry',
    attributes: ['requestId', 'vm', 'nsg', 'rule', 'refusedBy'],
  },
  'jit.drift.found': {
    what: "the reconciler found someone else's rule opening a protected port to a broad source",
    attributes: ['nsg', 'rule', 'detail'],
  },
  'jit.reconcile.completed': {
    what: 'one reconciler run: what it repaired, the drift and errors it met',
    attributes: [
      'closedExpired',
      'failedStuck',
      'redriven',
      'leftoversRemoved',
      'orphansRemoved',
      'baselinesRestored',
      'driftFound',
      'errors',
      'armCalls',
      'budgetSpent',
    ],
  },
  'jit.message.poisoned': {
    what: 'a queue or Service Bus message failed its last attempt and goes to the poison or dead-letter queue',
    attributes: ['queue', 'function', 'requestId', 'attempts', 'error'],
  },
  'jit.notification.dead-lettered': {
    what: 'a chat or webhook notification was given up after its retries and moved to jit-notifications-poison',
    attributes: ['target', 'targetType', 'kind', 'requestId', 'attempts', 'error'],
  },
  'jit.audit.anchored': {
    what: "a day's audit chain head and digest were written to the immutable anchor container",
    attributes: ['day', 'events', 'headSeq'],
  },
  'jit.audit.anchor-failed': {
    what: "a day's anchor could not be written, or an anchor already stored differs from the table",
    attributes: ['day', 'error'],
  },
} as const;

export const SIGNAL_METRICS = {
  'jit.grants.opened': { kind: 'counter', unit: '{grant}', attributes: ['approvalMode'] },
  'jit.grants.closed': { kind: 'counter', unit: '{grant}', attributes: ['status', 'closedBy'] },
  'jit.grants.failed': { kind: 'counter', unit: '{grant}', attributes: ['reasonCode'] },
  'jit.grant.open_latency': { kind: 'histogram', unit: 's', attributes: ['approvalMode'] },
  'jit.grant.close_lag': { kind: 'histogram', unit: 's', attributes: ['closedBy'] },
  'jit.reconcile.repairs': { kind: 'counter', unit: '{repair}', attributes: ['kind'] },
  'jit.reconcile.drift': { kind: 'counter', unit: '{rule}', attributes: [] },
  'jit.reconcile.errors': { kind: 'counter', unit: '{error}', attributes: [] },
  'jit.messages.poisoned': { kind: 'counter', unit: '{message}', attributes: ['queue'] },
  'jit.notifications.dead_lettered': { kind: 'counter', unit: '{message}', attributes: ['targetType'] },
} as const;

export type SignalEventName = keyof typeof SIGNAL_EVENTS;
type SignalMetricName = keyof typeof SIGNAL_METRICS;
export type CounterName = {
  [K in SignalMetricName]: (typeof SIGNAL_METRICS)[K]['kind'] extends 'counter' ? K : never;
}[SignalMetricName];
export type HistogramName = Exclude<SignalMetricName, CounterName>;

/** A value an attribute may hold (OpenTelemetry attribute values). */
type SignalValue = string | number | boolean | string[] | number[];

export type EventAttributes<N extends SignalEventName> = Partial<
  Record<(typeof SIGNAL_EVENTS)[N]['attributes'][number], SignalValue>
>;
export type MetricAttributes<N extends SignalMetricName> = Partial<
  Record<(typeof SIGNAL_METRICS)[N]['attributes'][number], SignalValue>
>;

/**
 * Where signals go: OpenTelemetry (shared/adapters/otelSignals.ts) to Application Insights in Azure, an in-memory
 * exporter in tests. Emitting never throws and never waits: telemetry must not fail what it observes.
 */
export interface Signals {
  event<N extends SignalEventName>(name: N, attributes: EventAttributes<N>): void;
  add<N extends CounterName>(name: N, value: number, attributes?: MetricAttributes<N>): void;
  record<N extends HistogramName>(name: N, value: number, attributes?: MetricAttributes<N>): void;
}

/** Why a grant failed, in a few words a metric can be split by (the full reason stays in the event). */
export type FailureReasonCode =
  | 'expired-before-apply'
  | 'apply-stalled'
  | 'no-nsg'
  | 'no-address'
  | 'vm-not-found'
  | 'priority-band-full'
  | 'arm-refused'
  | 'other';

const FAILURE_CODES: Array<[RegExp, FailureReasonCode]> = [
  [/expired before its rules could be written/i, 'expired-before-apply'],
  [/could not be completed before its expiry/i, 'apply-stalled'],
  [/no network security group/i, 'no-nsg'],
  [/no private .* address/i, 'no-address'],
  [/VM was not found/i, 'vm-not-found'],
  [/no free priority/i, 'priority-band-full'],
  [/gave up writing rule/i, 'arm-refused'],
];

export function failureReasonCode(reason: string | undefined): FailureReasonCode {
  return FAILURE_CODES.find(([pattern]) => pattern.test(reason ?? ''))?.[1] ?? 'other';
}

const seconds = (from: string | undefined, to: string | undefined): number | undefined =>
  from && to ? Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000) : undefined;

/** One signal to emit: an event, or a metric value. */
export type SignalCall =
  | { kind: 'event'; name: SignalEventName; attributes: Record<string, SignalValue | undefined> }
  | { kind: 'add'; name: CounterName; value: number; attributes: Record<string, SignalValue | undefined> }
  | {
      kind: 'record';
      name: HistogramName;
      value: number;
      attributes: Record<string, SignalValue | undefined>;
    };

/** Sends calls computed by `signalsOfTransition` (typed loosely there, checked against the lists here). */
export function emitAll(signals: Signals, calls: SignalCall[]): void {
  for (const c of calls) {
    if (c.kind === 'event') signals.event(c.name, c.attributes);
    else if (c.kind === 'add') signals.add(c.name, c.value, c.attributes);
    else signals.record(c.name, c.value, c.attributes);
  }
}

/**
 * What a request's move to `after.status` tells operators: always a `jit.request.changed`; live access adds the
 * open count and latency (from approval, or the later start, to live); an end adds the close count and, for an
 * expiry, how long past `expiresAt` the rules were gone; a failure adds its reason.
 */
export function signalsOfTransition(
  before: RequestStatus | undefined,
  after: AccessRequest,
  actor: string,
): SignalCall[] {
  const who = { requestId: after.id, vm: after.vmId.toLowerCase(), requester: after.requester };
  const calls: SignalCall[] = [
    {
      kind: 'event',
      name: 'jit.request.changed',
      attributes: {
        ...who,
        status: after.status,
        previousStatus: before,
        policy: after.policyScope,
        approvalMode: after.approvalMode,
        actor,
      },
    },
  ];
  const status: RequestStatus = after.status;
  if (status === 'active') {
    const from = [after.approvedAt, after.startAt].filter(Boolean).sort().at(-1) ?? after.createdAt;
    const latency = seconds(from, after.activatedAt);
    calls.push(
      {
        kind: 'event',
        name: 'jit.grant.opened',
        attributes: {
          ...who,
          ports: after.ports,
          policy: after.policyScope,
          approvalMode: after.approvalMode,
          expiresAt: after.expiresAt,
          openLatencyInSeconds: latency,
        },
      },
      { kind: 'add', name: 'jit.grants.opened', value: 1, attributes: { approvalMode: after.approvalMode } },
    );
    if (latency !== undefined)
      calls.push({
        kind: 'record',
        name: 'jit.grant.open_latency',
        value: latency,
        attributes: { approvalMode: after.approvalMode },
      });
  }
  // Only access that was live closes: a request revoked before it went live opened nothing.
  if ((status === 'expired' || status === 'revoked') && after.activatedAt) {
    const lag = status === 'expired' ? seconds(after.expiresAt, after.endedAt) : undefined;
    // Metrics are split by a few values only: a person who revoked is `person` there (the event names them).
    const closer = actor.startsWith('system:') ? actor : 'person';
    calls.push(
      {
        kind: 'event',
        name: 'jit.grant.closed',
        attributes: { ...who, status, closedBy: actor, expiresAt: after.expiresAt, closeLagInSeconds: lag },
      },
      { kind: 'add', name: 'jit.grants.closed', value: 1, attributes: { status, closedBy: closer } },
    );
    if (lag !== undefined)
      calls.push({
        kind: 'record',
        name: 'jit.grant.close_lag',
        value: lag,
        attributes: { closedBy: closer },
      });
  }
  if (status === 'failed') {
    const reasonCode = failureReasonCode(after.statusReason);
    calls.push(
      {
        kind: 'event',
        name: 'jit.grant.failed',
        attributes: { ...who, reasonCode, reason: after.statusReason, actor },
      },
      { kind: 'add', name: 'jit.grants.failed', value: 1, attributes: { reasonCode } },
    );
  }
  return calls;
}

/** The counts of one reconciler run that operators watch (a subset of its report). */
export interface ReconcileCounts {
  closedExpired: number;
  failedStuck: number;
  redriven: number;
  approvalsExpired: number;
  leftoversRemoved: number;
  orphansRemoved: number;
  baselinesRestored: number;
  /** Live grants' rules ARM showed `Failed`, written again. */
  rulesRewritten: number;
  driftFound: number;
  errors: number;
  armCalls: number;
  budgetSpent: boolean;
}

/** A run's event, and one repairs count per kind of repair it made (none for a run that found nothing to do). */
export function signalsOfReconcile(r: ReconcileCounts): SignalCall[] {
  const calls: SignalCall[] = [
    {
      kind: 'event',
      name: 'jit.reconcile.completed',
      attributes: {
        closedExpired: r.closedExpired,
        failedStuck: r.failedStuck,
        redriven: r.redriven,
        leftoversRemoved: r.leftoversRemoved,
        orphansRemoved: r.orphansRemoved,
        baselinesRestored: r.baselinesRestored,
        driftFound: r.driftFound,
        errors: r.errors,
        armCalls: r.armCalls,
        budgetSpent: r.budgetSpent,
      },
    },
  ];
  const repairs: Array<[string, number]> = [
    ['closed-expired', r.closedExpired],
    ['failed-stuck', r.failedStuck],
    ['redriven', r.redriven],
    ['approval-expired', r.approvalsExpired],
    ['leftovers-removed', r.leftoversRemoved],
    ['orphan-removed', r.orphansRemoved],
    ['baseline-restored', r.baselinesRestored],
    ['failed-rule-rewritten', r.rulesRewritten],
  ];
  for (const [kind, n] of repairs)
    if (n > 0) calls.push({ kind: 'add', name: 'jit.reconcile.repairs', value: n, attributes: { kind } });
  if (r.driftFound > 0)
    calls.push({ kind: 'add', name: 'jit.reconcile.drift', value: r.driftFound, attributes: {} });
  if (r.errors > 0)
    calls.push({ kind: 'add', name: 'jit.reconcile.errors', value: r.errors, attributes: {} });
  return calls;
}
