/**
 * The composition root: the one place adapters are built and wired to the use cases. Azure runs it with the
 * configuration alone; the local host passes overrides for what the sandbox supplies itself (a credential the
 * ARM emulator accepts, its CA certificate, faster polling).
 */
import { hostname } from 'node:os';
import type { TokenCredential } from '@azure/core-auth';
import type { InvocationContext } from '@azure/functions';
import { metrics } from '@opentelemetry/api';
import type { MeterProvider } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import type { LoggerProvider } from '@opentelemetry/api-logs';
import { loadConfig } from './config';
import type { Config, Features } from './config';
import { FeatureUnavailable } from './domain/errors';
import type {
  ApprovalTokens,
  AuditAnchorStore,
  AuditTrail,
  Clock,
  MailComposer,
  Mailer,
} from './domain/ports';
import { BlobAuditAnchors } from './adapters/auditAnchorBlobs';
import { startAzureMonitor } from './adapters/azureMonitor';
import { FetchWebhookClient } from './adapters/fetchWebhooks';
import { OpenTelemetrySignals } from './adapters/otelSignals';
import { AcsMailer } from './adapters/acsMailer';
import { ApprovalTable } from './adapters/approvalTable';
import { JoseApprovalTokens } from './adapters/approvalTokens';
import { ArmNetworkGateway } from './adapters/armNetwork';
import { AuditTable } from './adapters/auditTable';
import { credentialFor } from './adapters/credentials';
import { GrantTable } from './adapters/grantTable';
import { NsgTable, TableNsgLocks } from './adapters/nsgTable';
import type { NsgLeaseOptions } from './adapters/nsgTable';
import { PolicyTable } from './adapters/policyTable';
import { RequestTable } from './adapters/requestTable';
import { TableRunLeases } from './adapters/runLeaseTable';
import { ServiceBusScheduledMessages, serviceBusClient } from './adapters/serviceBusScheduledMessages';
import { SmtpMailer } from './adapters/smtpMailer';
import { StorageNotificationQueue, StorageWorkQueues } from './adapters/storageQueues';
import { tableClient } from './adapters/tableStorage';
import { TABLES } from './names';
import { ArmAuthSettingsReader } from './adapters/armAuthSettings';
import { createAuthenticator } from './http/auth';
import type { Authenticator } from './http/auth';
import { AuditedRequests } from './usecases/auditOutbox';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { ChannelServices, Deps, GrantSettings, Logger } from './usecases/deps';
import { MailNotifier } from './usecases/notify';
import { deliveryOf } from './views/chatCards';
import { approverMail, requesterMail, settledMail } from './views/mail';
import { baselineEnforcement } from './usecases/baseline';
import { servingCheck } from './usecases/serving';
import type { ServingState } from './usecases/serving';
import { networkReach } from './usecases/reach';

export interface CompositionOverrides {
  env?: NodeJS.ProcessEnv;
  armCredential?: TokenCredential;
  armCaPem?: string;
  armPollIntervalInMs?: number;
  /** First delay of the ARM SDK's own retries of 5xx answers. */
  armRetryDelayInMs?: number;
  nsgLease?: Partial<NsgLeaseOptions>;
  settings?: Partial<GrantSettings>;
  clock?: Clock;
  /** Where signals go instead of the global OpenTelemetry providers (tests: in-memory exporters). */
  telemetry?: { meterProvider: MeterProvider; loggerProvider: LoggerProvider };
  /** Retries of chat and webhook deliveries (tests shorten them). */
  notifyRetry?: Partial<Pick<ChannelServices, 'maxAttempts' | 'firstRetryDelayInSeconds'>>;
}

export interface Services {
  config: Config;
  /**
   * Whether this instance may serve callers (shared/usecases/serving.ts): resolves once the start-up checks pass,
   * throws `NotServing` saying why otherwise.
   */
  serving: () => Promise<ServingState>;
  /** Throws `FeatureUnavailable` while the authentication feature is switched off: no caller can be identified. */
  authenticate: Authenticator;
  /** Per-caller limit on creating requests (per instance); undefined while the requests feature is off. */
  requestLimiter?: RateLimiterMemory;
  /**
   * Per-caller limit on every other changing call and on audit reads, one bucket per kind (per instance), at the
   * same rate; undefined while the requests feature is off.
   */
  callLimiter?: RateLimiterMemory;
  /** Per-person-and-address limit on posting approval decisions (per instance); undefined while approval is off. */
  approvalLimiter?: RateLimiterMemory;
  /** Dependencies with a logger that writes to the process console; per invocation use `depsFor`. */
  deps: Deps;
  /** The audit trail for reading (the same table, and the same instance, that `deps.audit` appends to). */
  auditTrail: AuditTrail;
  /** The audit trail's daily anchors outside the table, when a Blob service is configured. */
  auditAnchors?: AuditAnchorStore;
  close(): Promise<void>;
}

let overrides: CompositionOverrides = {};
let current: Services | undefined;

/** Sets what the next `services()` call builds with. Only the local host and tests call this. */
export function configureServices(next: CompositionOverrides): void {
  overrides = next;
  current = undefined;
}

/**
 * The wired services, built once: when the host starts (shared/hosting/host.ts), or on first use by a test or
 * tool. A bad core setting throws, with its name; a bad feature setting only switches that feature off.
 */
export function services(): Services {
  current ??= build(overrides);
  return current;
}

/** Closes the clients and forgets them (the host's stop, tests). */
export async function resetServices(): Promise<void> {
  const s = current;
  current = undefined;
  await s?.close();
}

/** The dependencies for one invocation: log lines go to the invocation's log, tagged with an event name. */
export function depsFor(context: InvocationContext): Deps {
  const deps: Deps = { ...services().deps, log: contextLogger(context) };
  // The enforcement hook works on behalf of this invocation: its log lines belong to it.
  deps.enforcement = baselineEnforcement(() => deps);
  deps.reach = networkReach(() => deps);
  return deps;
}

function build(o: CompositionOverrides): Services {
  const config = loadConfig(o.env ?? process.env);
  reportFeatures(config.features);
  const { authentication, approval, mail, requests } = config.features;
  // Optional features a broken setting switched off are reported above and simply absent below.
  const telemetry = config.features.telemetry.ready ? config.features.telemetry.settings : undefined;
  const notifyTargets = config.features.notifications.ready ? config.features.notifications.settings : [];
  const anchors = config.features.auditAnchors.ready ? config.features.auditAnchors.settings : undefined;
  const clock = o.clock ?? { now: () => new Date() };
  if (telemetry && !o.telemetry) startAzureMonitor(telemetry);
  const signals = new OpenTelemetrySignals(
    o.telemetry?.meterProvider ?? metrics.getMeterProvider(),
    o.telemetry?.loggerProvider ?? logs.getLoggerProvider(),
  );
  // Credentials are made lazily: the sandbox never needs one for storage or Service Bus.
  const storageCredential = lazy(() =>
    credentialFor(config.tables.kind === 'identity' ? config.tables.clientId : undefined),
  );
  const busCredential = lazy(() =>
    credentialFor(config.serviceBus.kind === 'identity' ? config.serviceBus.clientId : undefined),
  );
  const bus = serviceBusClient(config.serviceBus, busCredential);
  const scheduledMessages = new ServiceBusScheduledMessages(bus);
  const mails: MailComposer = { approverMail, settledMail, requesterMail };
  const mailer: Mailer = !mail.ready
    ? switchedOffMailer
    : mail.settings.mode === 'smtp'
      ? new SmtpMailer(mail.settings)
      : new AcsMailer(mail.settings, credentialFor(config.managedIdentityClientId));
  const settings: GrantSettings = {
    priorityBand: config.priorityBand,
    maxDurationInSeconds: config.maxDurationInSeconds,
    expiryGraceInSeconds: config.expiryGraceInSeconds,
    closeLeadInSeconds: config.closeLeadInSeconds,
    maxArmAttempts: 8,
    armBackoffInMs: 500,
    baselineBand: config.baselinePriorityBand,
    reconcileMaxArmCalls: config.reconcileMaxArmCalls,
    ...o.settings,
  };
  // A crashed holder blocks an NSG for at most the TTL; renewed every third of it while held.
  const locks = new TableNsgLocks(tableClient(config.tables, TABLES.nsgs, storageCredential), {
    ttlInMs: 15_000,
    waitInMs: 180_000,
    pollInMs: 250,
    ...o.nsgLease,
  });
  // One reconciler run at a time across instances; a crashed run holds the next one off for a minute at most.
  const leases = new TableRunLeases(tableClient(config.tables, TABLES.nsgs, storageCredential), {
    ttlInMs: 60_000,
    host: hostname(),
  });
  const audit = new AuditTable(tableClient(config.tables, TABLES.audit, storageCredential), clock);
  // With no target configured nothing is ever queued (no target wants anything), and the queue is never asked.
  const channels: ChannelServices = {
    targets: notifyTargets,
    queue: StorageNotificationQueue.fromConnection(config.queues, storageCredential),
    http: new FetchWebhookClient(),
    compose: { delivery: deliveryOf },
    // 15 s doubling: the eighth and last attempt about half an hour after the first.
    maxAttempts: 8,
    firstRetryDelayInSeconds: 15,
    ...o.notifyRetry,
  };
  const deps: Deps = {
    // Reads append a state change's event a crash left in the request row (shared/usecases/auditOutbox.ts).
    requests: new AuditedRequests(
      new RequestTable(tableClient(config.tables, TABLES.requests, storageCredential)),
      audit,
      clock,
    ),
    policies: new PolicyTable(tableClient(config.tables, TABLES.policies, storageCredential)),
    // `enforce: true`: baseline deny rules, a bounded share at once and the rest by the reconciler.
    enforcement: baselineEnforcement(() => deps),
    reach: networkReach(() => deps),
    grants: new GrantTable(tableClient(config.tables, TABLES.grants, storageCredential)),
    audit,
    queues: StorageWorkQueues.fromConnection(config.queues, storageCredential),
    scheduledMessages,
    network: new ArmNetworkGateway(o.armCredential ?? credentialFor(config.managedIdentityClientId), {
      endpoint: config.armEndpoint,
      caPem: o.armCaPem,
      pollIntervalInMs: o.armPollIntervalInMs,
      retryDelayInMs: o.armRetryDelayInMs,
    }),
    nsgs: new NsgTable(tableClient(config.tables, TABLES.nsgs, storageCredential)),
    locks,
    leases,
    clock,
    settings,
    log: consoleLogger,
    notifier: new MailNotifier(mailer, mails),
    signals,
    channels,
    approvals: {
      decisions: new ApprovalTable(tableClient(config.tables, TABLES.approvals, storageCredential)),
      tokens: approval.ready
        ? new JoseApprovalTokens(approval.settings.approvalKeys, () => clock.now())
        : switchedOffTokens,
      mailer,
      compose: mails,
      publicBaseUrl: approval.ready ? approval.settings.publicBaseUrl : '',
      groupMailboxes: approval.ready ? approval.settings.approverGroupMailboxes : {},
      unavailableFeature: !approval.ready ? 'approval' : !mail.ready ? 'mail' : undefined,
      // jwt mode has no browser sign-in: approvers could never decide (shared/usecases/serving.ts).
      signInAvailable: !(authentication.ready && authentication.settings.authMode === 'jwt'),
    },
  };
  // Without the authentication feature no caller is served at all (FeatureUnavailable), so there is nothing to check.
  const auth = authentication.ready ? authentication.settings : undefined;
  const serving = servingCheck(() => deps, {
    mode: auth?.authMode ?? 'dev',
    platform:
      auth?.authMode === 'easyauth' && auth.appResourceId
        ? new ArmAuthSettingsReader(o.armCredential ?? credentialFor(config.managedIdentityClientId), {
            endpoint: config.armEndpoint,
            appResourceId: auth.appResourceId,
            caPem: o.armCaPem,
          })
        : undefined,
  });
  return {
    config,
    deps,
    serving,
    authenticate: authentication.ready
      ? createAuthenticator(authentication.settings, {
          platform: async () => ({ tenantId: (await serving()).tenantId ?? '' }),
          onGroupOverage: (id) => consoleLogger.warn('auth.group-overage', { caller: id }),
        })
      : () => Promise.reject(new FeatureUnavailable('authentication')),
    requestLimiter: requests.ready
      ? new RateLimiterMemory({ points: requests.settings.requestsPerMinute, duration: 60 })
      : undefined,
    callLimiter: requests.ready
      ? new RateLimiterMemory({ points: requests.settings.requestsPerMinute, duration: 60 })
      : undefined,
    approvalLimiter: approval.ready
      ? new RateLimiterMemory({ points: approval.settings.approvalAttemptsPerMinute, duration: 60 })
      : undefined,
    auditTrail: audit,
    auditAnchors: anchors ? BlobAuditAnchors.fromConnection(anchors, storageCredential) : undefined,
    close: async () => {
      await locks.releaseAll();
      await scheduledMessages.close();
      if (mailer instanceof SmtpMailer) mailer.close();
      await bus.close();
    },
  };
}

/** One line per feature a broken setting switched off: the setting and why, never its value. */
function reportFeatures(features: Features): void {
  for (const [feature, state] of Object.entries(features)) {
    if (!state.ready) consoleLogger.error('config.feature-unavailable', { feature, ...state.problem });
  }
}

/** What a switched-off feature's ports do: refuse, naming the feature (503 on HTTP, a skip where mail was optional). */
const switchedOffMailer: Mailer = {
  send: () => Promise.reject(new FeatureUnavailable('mail')),
};
const switchedOffTokens: ApprovalTokens = {
  issue: () => Promise.reject(new FeatureUnavailable('approval')),
  verify: () => Promise.reject(new FeatureUnavailable('approval')),
  issueFormToken: () => Promise.reject(new FeatureUnavailable('approval')),
  verifyFormToken: () => Promise.reject(new FeatureUnavailable('approval')),
};

function lazy<T>(make: () => T): () => T {
  let v: T | undefined;
  return () => (v ??= make());
}

const line = (event: string, fields?: Record<string, unknown>) => JSON.stringify({ event, ...fields });

const consoleLogger: Logger = {
  info: (e, f) => console.info(line(e, f)),
  warn: (e, f) => console.warn(line(e, f)),
  error: (e, f) => console.error(line(e, f)),
};

function contextLogger(context: InvocationContext): Logger {
  return {
    info: (e, f) => context.info(line(e, f)),
    warn: (e, f) => context.warn(line(e, f)),
    error: (e, f) => context.error(line(e, f)),
  };
}
