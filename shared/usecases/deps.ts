import type {
  ApprovalRepository,
  ApprovalTokens,
  CardComposer,
  AuditLog,
  Clock,
  GrantRepository,
  MailComposer,
  Mailer,
  NetworkGateway,
  NetworkReachCheck,
  NsgLocks,
  NotificationQueue,
  NsgRegistry,
  WebhookClient,
  PolicyEnforcement,
  Notifier,
  PolicyRepository,
  RequestRepository,
  RunLeases,
  ScheduledMessages,
  WorkQueues,
} from '../domain/ports';
import type { NotifyTarget } from '../domain/notifications';
import type { PriorityBand } from '../domain/priority';
import type { Signals } from '../domain/signals';

/** A structured log line: a stable event name plus fields (always the request id where there is one). */
export interface Logger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

/** Tunables of the grant workflow, from configuration. */
export interface GrantSettings {
  priorityBand: PriorityBand;
  maxDurationInSeconds: number;
  expiryGraceInSeconds: number;
  /** How long before its expiry a grant's close begins (domain/lifecycle.ts `closingBeginsAt`). */
  closeLeadInSeconds: number;
  /** Attempts at one ARM write (re-planning the priority each time) before the grant is given up. */
  maxArmAttempts: number;
  /** First back-off between attempts; it doubles, with jitter, up to 8 s. */
  armBackoffInMs: number;
  /** Priorities of baseline deny rules (policies with `enforce`): below every JIT allow rule. */
  baselineBand: PriorityBand;
  /** Most ARM calls one reconciler run makes. */
  reconcileMaxArmCalls: number;
}

/**
 * Every port the use cases use, built once by the composition root. No use case takes all of it: each module
 * declares the ports it uses (`ApplyPorts`, `ExpiryPorts`, ... as a `Pick` of this), so its signature says what it
 * touches and a test builds only that.
 */
export interface Deps {
  requests: RequestRepository & { forgetOpen(id: string): Promise<void> };
  policies: PolicyRepository;
  /** What `enforce` does: baseline deny rules (shared/usecases/baseline.ts). */
  enforcement: PolicyEnforcement;
  /** Warns where the deployment cannot reach a policy's VMs (shared/usecases/reach.ts). */
  reach: NetworkReachCheck;
  grants: GrantRepository;
  audit: AuditLog;
  queues: WorkQueues;
  /** A request's start, approval deadline and expiry messages (Service Bus `jit-starts`, `jit-expirations`). */
  scheduledMessages: ScheduledMessages;
  network: NetworkGateway;
  /** Which NSGs JIT watches and what it keeps in them. */
  nsgs: NsgRegistry;
  locks: NsgLocks;
  /** Work one instance at a time may do across the Function App (the reconciler's run). */
  leases: RunLeases;
  clock: Clock;
  settings: GrantSettings;
  log: Logger;
  /** Tells requesters what happened to their requests. */
  notifier: Notifier;
  /** Metrics and events for operators (shared/domain/signals.ts). */
  signals: Signals;
  /** Chat and webhook notifications (shared/usecases/notifyChannels.ts); `targets` is empty when none is configured. */
  channels: ChannelServices;
  /** What manual approval needs (its `unavailableFeature` says when approvers cannot be asked). */
  approvals: ApprovalServices;
}

/** What writing to an NSG needs (shared/usecases/nsgWrites.ts): ARM, the per-NSG lock, the registry, the bands. */
export type NsgWritePorts = Pick<Deps, 'network' | 'locks' | 'nsgs' | 'settings' | 'log'>;

/** What chat and webhook notifications need. */
export interface ChannelServices {
  targets: readonly NotifyTarget[];
  queue: NotificationQueue;
  http: WebhookClient;
  /** What each kind of target is sent. */
  compose: CardComposer;
  /** Deliveries of one notification to one target before it is dead-lettered. */
  maxAttempts: number;
  /** Wait before the second attempt; it doubles each time (with jitter), up to an hour. */
  firstRetryDelayInSeconds: number;
}

/** Manual approval's own ports and settings (issue #3). */
export interface ApprovalServices {
  decisions: ApprovalRepository;
  tokens: ApprovalTokens;
  mailer: Mailer;
  /** The mails approvers get. */
  compose: MailComposer;
  /** Base URL of the app, without a trailing slash; links are `<base>/api/approvals?token=…`. */
  publicBaseUrl: string;
  /** Mailbox per approver group object id (lower-cased). */
  groupMailboxes: Readonly<Record<string, string>>;
  /**
   * The feature (`approval` or `mail`) that is switched off by a broken setting, when approvers cannot be asked
   * now. Decisions already recorded still count, and deadlines still expire requests.
   */
  unavailableFeature?: string;
  /** Whether approvers can sign in to decide (not in `jwt` mode); without it manual approval is refused. */
  signInAvailable?: boolean;
}
