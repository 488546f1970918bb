import type {
  AuditLog,
  Clock,
  ExpiryScheduler,
  GrantRepository,
  NetworkGateway,
  PolicyRepository,
  RequestRepository,
  StartScheduler,
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
}

/** Everything a use case may touch. Built once by the composition root. */
export interface Deps {
  requests: RequestRepository & { forgetOpen(id: string): Promise<void> };
  policies: PolicyRepository;
  grants: GrantRepository;
  audit: AuditLog;
  queues: WorkQueues;
  scheduler: ExpiryScheduler;
  /** Start messages of requests made ahead of time (Service Bus `jit-starts`). */
  starts: StartScheduler;
  network: NetworkGateway;
  clock: Clock;
  settings: GrantSettings;
  log: Logger;
}
