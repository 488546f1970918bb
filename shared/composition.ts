/**
 * The composition root: the one place adapters are built and wired to the use cases. Azure runs it with the
 * configuration alone; the local host passes overrides for what the sandbox supplies itself (a credential the
 * ARM emulator accepts, its CA certificate, faster polling).
 */
import type { TokenCredential } from '@azure/core-auth';
import type { InvocationContext } from '@azure/functions';
import { loadConfig } from './config';
import type { Config } from './config';
import type { AuditTrail, Clock } from './domain/ports';
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
import { ServiceBusApprovalDeadlines } from './adapters/serviceBusApprovalDeadlines';
import { ServiceBusExpiryScheduler, serviceBusClient } from './adapters/serviceBusScheduler';
import { SmtpMailer } from './adapters/smtpMailer';
import { ServiceBusStartScheduler } from './adapters/serviceBusStartScheduler';
import { StorageWorkQueues } from './adapters/storageQueues';
import { tableClient } from './adapters/tableStorage';
import { TABLES } from './names';
import { ArmAuthSettingsReader } from './adapters/armAuthSettings';
import { createAuthenticator } from './http/auth';
import type { Authenticator } from './http/auth';
import { AuditedRequests } from './usecases/auditOutbox';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Deps, GrantSettings, Logger } from './usecases/deps';
import { MailNotifier } from './usecases/notify';
import { baselineEnforcement } from './usecases/baseline';
import { servingCheck } from './usecases/serving';
import type { ServingState } from './usecases/serving';

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
}

export interface Services {
  config: Config;
  /**
   * Whether this instance may serve callers (shared/usecases/serving.ts): resolves once the start-up checks pass,
   * throws `NotServing` saying why otherwise.
   */
  serving: () => Promise<ServingState>;
  authenticate: Authenticator;
  /** Per-caller limit on creating requests (per instance). */
  requestLimiter: RateLimiterMemory;
  /** Per-caller limit on every other changing call and on audit reads, one bucket per kind (per instance). */
  callLimiter: RateLimiterMemory;
  /** Per-person-and-address limit on posting approval decisions (per instance). */
  approvalLimiter: RateLimiterMemory;
  /** Dependencies with a logger that writes to the process console; per invocation use `depsFor`. */
  deps: Deps;
  /** The audit trail for reading (the same table, and the same instance, that `deps.audit` appends to). */
  auditTrail: AuditTrail;
  close(): Promise<void>;
}

let overrides: CompositionOverrides = {};
let current: Services | undefined;

/** Sets what the next `services()` call builds with. Only the local host and tests call this. */
export function configureServices(next: CompositionOverrides): void {
  overrides = next;
  current = undefined;
}

/** The wired services, built on first use (so a bad setting fails the first invocation loudly, with its name). */
export function services(): Services {
  current ??= build(overrides);
  return current;
}

/** Closes the clients and forgets them (the local host's shutdown, tests). */
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
  return deps;
}

function build(o: CompositionOverrides): Services {
  const config = loadConfig(o.env ?? process.env);
  const clock = o.clock ?? { now: () => new Date() };
  // Credentials are made lazily: the sandbox never needs one for storage or Service Bus.
  const storageCredential = lazy(() =>
    credentialFor(config.tables.kind === 'identity' ? config.tables.clientId : undefined),
  );
  const busCredential = lazy(() =>
    credentialFor(config.serviceBus.kind === 'identity' ? config.serviceBus.clientId : undefined),
  );
  const bus = serviceBusClient(config.serviceBus, busCredential);
  const scheduler = new ServiceBusExpiryScheduler(bus);
  const deadlines = new ServiceBusApprovalDeadlines(bus);
  const mailer =
    config.mail.mode === 'smtp'
      ? new SmtpMailer(config.mail)
      : new AcsMailer(config.mail, credentialFor(config.managedIdentityClientId));
  const starts = new ServiceBusStartScheduler(bus);
  const settings: GrantSettings = {
    priorityBand: config.priorityBand,
    maxDurationInSeconds: config.maxDurationInSeconds,
    expiryGraceInSeconds: config.expiryGraceInSeconds,
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
  const audit = new AuditTable(tableClient(config.tables, TABLES.audit, storageCredential), clock);
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
    grants: new GrantTable(tableClient(config.tables, TABLES.grants, storageCredential)),
    audit,
    queues: StorageWorkQueues.fromConnection(config.queues, storageCredential),
    scheduler,
    starts,
    network: new ArmNetworkGateway(o.armCredential ?? credentialFor(config.managedIdentityClientId), {
      endpoint: config.armEndpoint,
      caPem: o.armCaPem,
      pollIntervalInMs: o.armPollIntervalInMs,
      retryDelayInMs: o.armRetryDelayInMs,
    }),
    nsgs: new NsgTable(tableClient(config.tables, TABLES.nsgs, storageCredential)),
    locks,
    clock,
    settings,
    log: consoleLogger,
    notifier: new MailNotifier(mailer),
    approvals: {
      decisions: new ApprovalTable(tableClient(config.tables, TABLES.approvals, storageCredential)),
      tokens: new JoseApprovalTokens(config.approvalKeys, () => clock.now()),
      mailer,
      deadlines,
      publicBaseUrl: config.publicBaseUrl,
      groupMailboxes: config.approverGroupMailboxes,
      // jwt mode has no browser sign-in: approvers could never decide (shared/usecases/serving.ts).
      signInAvailable: config.authMode !== 'jwt',
    },
  };
  const serving = servingCheck(() => deps, {
    mode: config.authMode,
    platform:
      config.authMode === 'easyauth' && config.appResourceId
        ? new ArmAuthSettingsReader(o.armCredential ?? credentialFor(config.managedIdentityClientId), {
            endpoint: config.armEndpoint,
            appResourceId: config.appResourceId,
            caPem: o.armCaPem,
          })
        : undefined,
  });
  return {
    config,
    deps,
    serving,
    authenticate: createAuthenticator(config, {
      platform: async () => ({ tenantId: (await serving()).tenantId ?? '' }),
      onGroupOverage: (id) => consoleLogger.warn('auth.group-overage', { caller: id }),
    }),
    requestLimiter: new RateLimiterMemory({ points: config.requestsPerMinute, duration: 60 }),
    callLimiter: new RateLimiterMemory({ points: config.requestsPerMinute, duration: 60 }),
    approvalLimiter: new RateLimiterMemory({ points: config.approvalAttemptsPerMinute, duration: 60 }),
    auditTrail: audit,
    close: async () => {
      await locks.releaseAll();
      await scheduler.close();
      await deadlines.close();
      if (mailer instanceof SmtpMailer) mailer.close();
      await starts.close();
      await bus.close();
    },
  };
}

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
