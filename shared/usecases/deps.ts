import type {
  AuditLog,
  Clock,
  ExpiryScheduler,
  GrantRepository,
  NetworkGateway,
  NsgLocks,
  NsgRegistry,
  PolicyEnforcement,
  PolicyRepository,
  RequestRepository,
  WorkQueues,
} from '../domain/ports';
import type { PriorityBand } from '../domain/priority';

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
  /** Attempts at one ARM write (re-planning the priority each time) before the grant is given up. */
  maxArmAttempts: number;
  /** First back-off between attempts; it doubles, with jitter, up to 8 s. */
  armBackoffInMs: number;
  /** Priorities of baseline deny rules (policies with `enforce`): below every JIT allow rule. */
  baselineBand: PriorityBand;
  /** Most ARM calls one reconciler run makes. */
  reconcileMaxArmCalls: number;
}

/** Everything a use case may touch. Built once by the composition root. */
export interface Deps {
  requests: RequestRepository & { forgetOpen(id: string): Promise<void> };
  policies: PolicyRepository;
  /** What `enforce` does; optional until the network use cases provide it (see NO_ENFORCEMENT). */
  enforcement?: PolicyEnforcement;
  grants: GrantRepository;
  audit: AuditLog;
  queues: WorkQueues;
  scheduler: ExpiryScheduler;
  network: NetworkGateway;
  /** Which NSGs JIT watches and what it keeps in them. */
  nsgs: NsgRegistry;
  locks: NsgLocks;
  clock: Clock;
  settings: GrantSettings;
  log: Logger;
}
