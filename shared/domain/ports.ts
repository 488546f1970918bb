/**
 * Ports: what the use cases need from the outside world. Adapters in shared/adapters implement them with the
 * Azure SDKs; tests implement them with the local emulators (or, for pure logic, in memory).
 */
import type { PlatformAuthSettings } from './platformAuth';
import type { ApprovalClaims, ApprovalDecision } from './approval';
import type { BaselineRule, VmCoverage } from './baseline';
import type {
  AccessRequest,
  AllowRuleSpec,
  AuditEvent,
  GrantRule,
  Policy,
  RequestStatus,
  SecurityRuleView,
  VmNetworkPath,
} from './types';
import type { AuditRow } from './auditChain';
import type { AuditPage, AuditQuery } from './auditQuery';
import type { DayAnchor } from './auditAnchor';
import type { Notification, NotificationMessage, NotifyTarget } from './notifications';
import type { SchedulePurpose } from './scheduledMessages';

/** A value read from a table, with the ETag to make the next write conditional. */
interface Versioned<T> {
  value: T;
  etag: string;
}

/**
 * An audit event stored in the request row by the write that makes the change it records, until the trail holds
 * it (shared/usecases/auditOutbox.ts): a crash between the two writes delays the event, never loses it.
 */
export interface PendingAudit {
  /** Also the event's `eventId` column in the trail, by which a second append is recognised. */
  eventId: string;
  /** When the change was written (ISO 8601). */
  recordedAt: string;
  event: AuditEvent;
}

/** A request as stored: the row, its ETag, and an audit event still to be appended, if any. */
export interface StoredRequest extends Versioned<AccessRequest> {
  pendingAudit?: PendingAudit;
}

/** One page of a requester's requests, newest first. */
export interface RequestPage {
  items: AccessRequest[];
  /** Present when more may follow: pass it back to continue after this page. */
  continuationToken?: string;
}

/** Which of a requester's requests to list. */
export interface RequestListOptions {
  status?: RequestStatus;
  vmId?: string;
  /** Most items in the page. A page may hold fewer, even none, and still have a continuation token. */
  limit: number;
  continuationToken?: string;
}

export interface RequestRepository {
  /**
   * Creates the row; fails if the id exists. Also records the request in the index of open requests and in
   * its requester's index.
   */
  create(request: AccessRequest, pendingAudit?: PendingAudit): Promise<string>;
  get(id: string): Promise<StoredRequest | undefined>;
  /**
   * Conditional replace; throws `ConcurrencyConflict` when the row changed since `etag` was read. The row keeps
   * `pendingAudit` when given and loses any it had otherwise. A final request stays on the open index while an
   * event is pending, so the reconciler comes back for it.
   */
  update(request: AccessRequest, etag: string, pendingAudit?: PendingAudit): Promise<string>;
  /** Ids of requests not yet in a final state, oldest first (the reconciler's work list). */
  listOpen(): AsyncIterable<string>;
  /**
   * A requester's requests, newest first. Throws `InvalidRequest` (field `continuationToken`) for a token this
   * repository did not issue.
   */
  listByRequester(requester: string, options: RequestListOptions): Promise<RequestPage>;
}

export interface PolicyRepository {
  /** The policies stored for any of the given (lower-cased) scopes. */
  getForScopes(scopes: string[]): Promise<Policy[]>;
  upsert(policy: Policy): Promise<void>;
  list(): AsyncIterable<Policy>;
  /** The whole set, with its version: the token that makes the next `applyChanges` conditional on this read. */
  getSet(): Promise<PolicySet>;
  /**
   * Writes changes to the set if it is still at `version` (undefined: never changed through this method), and
   * moves the version on. Up to 99 changes are one transaction; more go in transactions of 99, in order, each
   * conditional on the one before. Throws `ConcurrencyConflict` when someone changed the set since it was read;
   * nothing of that transaction is written.
   */
  applyChanges(changes: PolicyWrite[], version: string | undefined): Promise<void>;
}

/** This app's own App Service Authentication settings, as ARM holds them (`config/authsettingsV2`). */
export interface PlatformAuthReader {
  getAuthSettings(): Promise<PlatformAuthSettings>;
}

/** Every stored policy, and the version of the set they were read at. */
export interface PolicySet {
  policies: Policy[];
  version: string | undefined;
}

/** One change to the stored set of policies. */
export type PolicyWrite = { kind: 'put'; policy: Policy } | { kind: 'delete'; scope: string };

/**
 * The `enforce` flag's effect: a baseline deny rule for the policy's ports in the NSGs of the VMs it covers.
 * The policy use cases call it after a change is stored; the network use cases implement it. Implementations
 * should be idempotent (a call may repeat) and quick (queue long ARM work rather than do it inline).
 */
export interface PolicyEnforcement {
  /** The policy enforces now: it was added with `enforce: true`, turned it on, or changed its ports while on. */
  sync(policy: Policy): Promise<void>;
  /** The policy no longer enforces: it was removed, or turned `enforce` off. `policy` is the last stored one. */
  remove(policy: Policy): Promise<void>;
}

/**
 * Whether the deployment can reach the network of the VMs a policy covers (read their paths, write and delete rules
 * in their NSGs). The policy use cases call it to warn; the network use cases implement it (shared/usecases/reach.ts).
 */
export interface NetworkReachCheck {
  /** One warning per VM or NSG the deployment cannot read or write, for the VMs in the policy's scope. */
  policy(policy: Policy): Promise<string[]>;
  /** The same for one VM, under the policy that decides for it. */
  vm(vmId: string, policy: Policy): Promise<string[]>;
}

export interface GrantRepository {
  upsert(rule: GrantRule): Promise<void>;
  list(requestId: string): Promise<GrantRule[]>;
  /** The row of one grant's rule in one NSG. */
  get(requestId: string, nsgId: string): Promise<GrantRule | undefined>;
  /**
   * The index of grants that may still have a rule in some NSG: marked before a rule is written, cleared once
   * every rule of the grant is removed. The reconciler walks it, whatever the request's state says.
   */
  markLive(requestId: string): Promise<void>;
  clearLive(requestId: string): Promise<void>;
  listLive(): AsyncIterable<string>;
}

export interface AuditLog {
  append(event: AuditEvent): Promise<void>;
  /**
   * Whether the trail holds the event with this `eventId` about this request, appended at or soon after
   * `recordedAt`. Restores the event's index copies if only the chain has it.
   */
  hasEvent(requestId: string, eventId: string, recordedAt: string): Promise<boolean>;
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

/**
 * The audit trail's daily anchors, kept outside its table in a container with a time-based retention policy
 * (shared/domain/auditAnchor.ts). Written once per day and never overwritten.
 */
export interface AuditAnchorStore {
  /** Stores a day's anchor unless one exists: `exists` (and nothing written) when the day has one already. */
  create(anchor: DayAnchor): Promise<'created' | 'exists'>;
  /** The anchor of one day, if stored; `invalid` when the blob is not an anchor. */
  get(day: string): Promise<DayAnchor | 'invalid' | undefined>;
  /** The days from `fromDay` to `toDay` (inclusive) that have an anchor. */
  listDays(fromDay: string, toDay: string): Promise<string[]>;
}

/** The queue of chat and webhook deliveries, and its dead-letter queue (jit-notifications, …-poison). */
export interface NotificationQueue {
  /** Queues a delivery, visible after `delayInSeconds` (a retry's back-off). */
  send(message: NotificationMessage, delayInSeconds?: number): Promise<void>;
  /** Moves a delivery that will not succeed to the poison queue, with why, for a person to look at. */
  deadLetter(message: NotificationMessage, error: string): Promise<void>;
}

/** An HTTP POST of a notification. Resolves with the answer's status (any status); rejects on a network error. */
export interface WebhookClient {
  post(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; body: string }>;
}

/** The hops between functions (Storage Queues). */
export interface WorkQueues {
  /** Ask `evaluateRequest` to look at a request. */
  enqueueEvaluation(requestId: string): Promise<void>;
  /** Ask `applyGrant` to open access for an approved request. */
  enqueueGrant(requestId: string): Promise<void>;
}

/**
 * Service Bus scheduled messages, one live message per request and purpose (its start, its approval deadline, its
 * expiry), due at the request's time for it. Scheduling the same version twice (a retry) yields one message: the id
 * is `<purpose>:<request id>:<due time>` (domain/scheduledMessages.ts) and the queues drop duplicates.
 */
export interface ScheduledMessages {
  /**
   * Schedules the request's message for `purpose`, due at `dueAt` (ISO 8601), its id and body made from it
   * (`scheduledMessageId`, `scheduledMessageBody`); Service Bus enqueues it at `enqueueAt` when given (an expiry's
   * close begins a little ahead of it: domain/lifecycle.ts `closingBeginsAt`), else at `dueAt`. Returns the
   * sequence number (a decimal string: it is a 64-bit integer) of the live message: the one just scheduled or,
   * when Service Bus dropped it as a duplicate, the earlier one with its id.
   */
  schedule(purpose: SchedulePurpose, requestId: string, dueAt: string, enqueueAt?: string): Promise<string>;
  /** Cancels a scheduled message of `purpose`; an unknown or already delivered one is fine. */
  cancel(purpose: SchedulePurpose, sequenceNumber: string): Promise<void>;
}

/** ARM, as far as JIT touches it. */
export interface NetworkGateway {
  /** ARM's own id of the VM (its canonical spelling). Throws `ResourceNotFound` if there is no such VM. */
  getVmId(vmId: string): Promise<string>;
  /** The VM's private addresses and every NSG in front of it. Throws `GrantNotApplicable` if the VM is gone. */
  resolvePath(vmId: string): Promise<VmNetworkPath>;
  /** Ids of the VMs in a scope: a subscription, a resource group, or one VM (which may not exist). */
  listVms(scope: string): AsyncIterable<string>;
  /**
   * The network paths of the VMs in a subscription or resource group, from three listings of that scope (VMs, NICs,
   * virtual networks) rather than three reads per VM; `armCalls` counts the pages read. A VM whose NIC or subnet
   * lies outside the scope is left out (resolve it with `resolvePath`). For the reconciler's sweep.
   */
  resolvePathsInScope(scope: string): Promise<{ paths: VmNetworkPath[]; armCalls: number }>;
  listRules(nsgId: string): Promise<SecurityRuleView[]>;
  getRule(nsgId: string, ruleName: string): Promise<SecurityRuleView | undefined>;
  /**
   * Creates or replaces a rule and waits for ARM to finish. Throws `PriorityTaken` when another rule holds the
   * priority, `TransientFailure` for what a retry may fix (busy NSG, throttling, 5xx, a failed operation).
   */
  putRule(nsgId: string, rule: AllowRuleSpec): Promise<void>;
  /**
   * Deletes a rule and waits; a rule that is already gone is fine. Throws `ScopeLocked` when a management lock
   * forbids the delete.
   */
  deleteRule(nsgId: string, ruleName: string): Promise<void>;
  /**
   * The deployment identity's own permissions on a resource (an NSG): one entry per role assignment that applies,
   * with its Actions and NotActions. For telling an operator, before any grant, what the role does not cover.
   */
  listPermissions(resourceId: string): Promise<Array<{ actions: string[]; notActions: string[] }>>;
  /** The management locks that apply to the NSG: on it, its resource group and its subscription. */
  listLocks(nsgId: string): Promise<ResourceLock[]>;
  /**
   * Makes the NSG re-evaluate established flows whenever its rules change (`flushConnection`), so that removing an
   * allow rule also cuts the sessions it let in. Returns whether it had to turn it on.
   */
  enableFlushConnection(nsgId: string): Promise<boolean>;
}

/** A management lock that applies to a resource (set on it or inherited from a scope above). */
export interface ResourceLock {
  name: string;
  /** `CanNotDelete` refuses deletes; `ReadOnly` refuses writes and deletes. */
  level: 'CanNotDelete' | 'ReadOnly';
  /** The scope the lock is set on (the resource, its resource group or its subscription). */
  scope: string;
}

/**
 * Serialises JIT's writes to one NSG, within a process and across instances (ARM runs one operation per NSG at a
 * time and answers the rest `AnotherOperationInProgress`). An optimisation, not the guarantee: ARM's conflict
 * answers still decide. Not re-entrant.
 */
export interface NsgLocks {
  /**
   * Runs `task` as the NSG's only JIT writer; throws `TransientFailure` if it stays busy too long. An `urgent` task
   * (closing access) goes ahead of the `normal` ones (opening it) waiting in this instance.
   */
  withLock<T>(nsgId: string, task: () => Promise<T>, urgency?: 'normal' | 'urgent'): Promise<T>;
}

/** What `RunLeases.runAlone` did: ran the task and what it returned, or left it to the instance holding the lease. */
export type RunOutcome<T> = { ran: true; value: T } | { ran: false; holder: string };

/** Leases on work that one instance of the Function App at a time may do (the reconciler's run). */
export interface RunLeases {
  /**
   * Runs `task` holding the lease `name`, renewed while it runs and given back after; when another instance holds
   * an unexpired lease, returns at once without running it.
   */
  runAlone<T>(name: string, task: () => Promise<T>): Promise<RunOutcome<T>>;
}

/** An NSG the reconciler sweeps, and what JIT protects in it. */
export interface WatchedNsg {
  /** Lower-cased NSG id. */
  nsgId: string;
  /** Ports policies manage for VMs behind it. */
  ports: number[];
  /** Addresses of those VMs that the NSG filters. */
  addresses: string[];
  /** When the reconciler last swept it (ISO time), if ever. */
  reconciledAt?: string;
  /** Fingerprints of drift already reported, so the same drift is audited once. */
  driftReported: string[];
}

/** What JIT watches and keeps in NSGs: the covered NSGs, the VMs behind them, the baseline rules to keep. */
export interface NsgRegistry {
  /** Records that JIT watches the NSG, adding ports and addresses to what it protects there. */
  watchNsg(nsgId: string, protects: { ports: number[]; addresses: string[] }): Promise<void>;
  listWatchedNsgs(): AsyncIterable<WatchedNsg>;
  getWatchedNsg(nsgId: string): Promise<WatchedNsg | undefined>;
  markSwept(nsgId: string, at: string, driftReported: string[]): Promise<void>;
  /** Stops watching an NSG that no longer exists. */
  forgetNsg(nsgId: string): Promise<void>;

  upsertBaseline(rule: BaselineRule): Promise<void>;
  /** Forgets one VM's share of a baseline rule. */
  deleteBaseline(rule: BaselineRule): Promise<void>;
  /** The baseline rules to keep in one NSG. */
  listBaselinesInNsg(nsgId: string): Promise<BaselineRule[]>;
  /** The baseline rules kept for one VM, in any NSG. */
  listBaselinesOfVm(vmId: string): Promise<BaselineRule[]>;

  upsertCoverage(coverage: VmCoverage): Promise<void>;
  deleteCoverage(vmId: string): Promise<void>;
  listCoverage(): AsyncIterable<VmCoverage>;
}

export interface Clock {
  now(): Date;
}

/** One e-mail, in plain text and HTML. Every user-supplied string in `html` is already escaped. */
export interface MailMessage {
  to: string[];
  subject: string;
  text: string;
  html: string;
}

/** What an approver's mail says: who asks for what, the Approve / Deny links, and what approval takes. */
export interface ApproverMailModel {
  request: AccessRequest;
  to: string;
  approveUrl: string;
  denyUrl: string;
  /** Approvals needed, and how many approver entries the policy names. */
  required: number;
  approverCount: number;
  /** The link's expiry (the approval deadline). */
  expiresAt: string;
  /** Set when the link went to a group's mailbox: whoever uses it must sign in as a member. */
  group?: string;
}

/**
 * Renders the mails the use cases send (shared/views/mail.ts, wired by the composition root): a use case hands over
 * a model and gets the message back, and renders nothing itself.
 */
export interface MailComposer {
  /** To an approver: the request and the links that open its page. */
  approverMail(model: ApproverMailModel): MailMessage;
  /** To an approver whose link was not used: the request was settled without them. */
  settledMail(request: AccessRequest, to: string): MailMessage;
  /** To the requester, about the status their request is now in; undefined for a status they do not hear of. */
  requesterMail(request: AccessRequest, note?: string): MailMessage | undefined;
}

/** One delivery of a notification to a chat or webhook target: the body as it is posted, and its headers. */
export interface Delivery {
  body: string;
  headers: Record<string, string>;
}

/** Renders a notification as each kind of target wants it (shared/views/chatCards.ts). */
export interface CardComposer {
  /** The delivery to `target`, signed (generic webhooks) at `nowInSeconds`. */
  delivery(target: NotifyTarget, notification: Notification, nowInSeconds: number): Delivery;
}

/** Sends mail (SMTP or Azure Communication Services). Throws when the message was not accepted. */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

/**
 * Tells the requester where their request now stands; the request's status says what happened. Callers treat a
 * failure as something to log, never as a reason to fail the transition that already happened.
 */
export interface Notifier {
  /** `note` adds one line for the person (who was asked, who approved). */
  requestChanged(request: AccessRequest, note?: string): Promise<void>;
}

/** `JitApprovals`: one row per approver and request, written once. */
export interface ApprovalRepository {
  /** Records a decision with a conditional insert; throws `AlreadyDecided` if this approver decided before. */
  record(decision: ApprovalDecision): Promise<void>;
  get(requestId: string, approver: string): Promise<ApprovalDecision | undefined>;
  list(requestId: string): Promise<ApprovalDecision[]>;
}

/** Signs and checks the tokens in approval links, and the form tokens that guard the decision POST. */
export interface ApprovalTokens {
  issue(claims: { requestId: string; approver: string }, expiresAt: Date): Promise<string>;
  /** Throws `ApprovalTokenInvalid` or `ApprovalTokenExpired`. */
  verify(token: string): Promise<ApprovalClaims>;
  /**
   * A short-lived token for the decision form, bound to one approval token (by its id) and to the person the page
   * is shown to (their key; none when nobody is signed in).
   */
  issueFormToken(approvalTokenId: string, personId?: string): Promise<string>;
  /**
   * Throws `CsrfCheckFailed` unless the form token is genuine, unexpired, bound to this approval token and shown to
   * this person.
   */
  verifyFormToken(formToken: string, approvalTokenId: string, personId?: string): Promise<void>;
}
