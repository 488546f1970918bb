/**
 * The local host in a child process for the benchmarks and the soak (dev/host/hostProcess.ts launches it, as it
 * does for the tests): the sandbox's settings, the benchmarks' ARM settings and, on request, instruments loaded into
 * the child (this file is that extension too):
 * - it times every ARM call each queue/bus invocation makes, per request id, so a benchmark can subtract the time
 *   spent inside ARM from the end-to-end figure;
 * - `verbose` writes a line when each queue or bus invocation starts and ends.
 * The soak can SIGKILL it mid-step, as a crash or a scale-in without notice would end an instance.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { services } from '../../shared/composition';
import { declaredFunctions } from '../../shared/hosting/declare';
import type { ServiceBusQueueFunction, StorageQueueFunction } from '../../shared/hosting/declare';
import type { GrantSettings } from '../../shared/usecases/deps';
import type { Sandbox } from '../../dev/sandbox';
import { PROJECT_ROOT } from '../../dev/sandbox';
import { readHostSettings } from '../../dev/host/hostJson';
import type { HostSettings } from '../../dev/host/hostJson';
import { HostProcess } from '../../dev/host/hostProcess';

export interface ChildHostConfig {
  functionsDir: string;
  host: HostSettings;
  settings: Record<string, string>;
  armCaPem: string;
  grantSettings?: Partial<GrantSettings>;
  /** Time ARM calls per invocation and request (a proxy around the network port; costs microseconds). */
  instrumentArm?: boolean;
  /** Write info lines too (every use-case event), not only warnings and errors. */
  verbose?: boolean;
  /** How often the ARM adapter polls an operation: 50 ms as in the sandbox, or `default` for the deployed setting. */
  armPollIntervalInMs?: number | 'default';
}

/** ARM time of one function's invocations for one request. */
interface ArmTiming {
  /** Wall time inside ARM calls (overlapping calls counted once). */
  armInMs: number;
  /** Wall time of the invocations themselves. */
  invocationInMs: number;
  invocations: number;
  /** Calls per gateway method (resolvePath, getRule, listRules, putRule, deleteRule, ...). */
  calls: Record<string, number>;
}

export interface ChildStats {
  /** Keyed `<functionName>:<requestId>`. */
  arm: Record<string, ArmTiming>;
  /** Peak resident set size of the child, from the kernel (KiB). */
  maxRssInKiB: number;
  rssInBytes: number;
  heapUsedInBytes: number;
  /** CPU time the child has used (user + system). */
  cpuInMs: number;
}

/** What the parent asks the child's instruments for. */
interface StatsAnswer {
  type: 'stats';
  stats: ChildStats;
}

/** What this file, loaded into the child as its extension, is told. */
interface InstrumentOptions {
  instrumentArm?: boolean;
  verbose?: boolean;
}

export class ChildHost {
  private constructor(private readonly process: HostProcess) {}

  get port(): number {
    return this.process.port;
  }

  get baseUrl(): string {
    return this.process.baseUrl;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get alive(): boolean {
    return this.process.alive;
  }

  /** The sandbox's own settings and host.json, with the sandbox's short ARM polls (as Sandbox.start configures). */
  static forSandbox(
    sandbox: Sandbox,
    options: {
      host?: (h: HostSettings) => HostSettings;
      instrumentArm?: boolean;
      logFile?: string;
      verbose?: boolean;
      armPollIntervalInMs?: number | 'default';
      /** Settings over the sandbox's. */
      settings?: Record<string, string>;
    } = {},
  ): Promise<ChildHost> {
    const host = readHostSettings(join(PROJECT_ROOT, 'host.json'));
    return ChildHost.start(
      {
        functionsDir: join(PROJECT_ROOT, 'dist', 'functions'),
        host: options.host ? options.host(host) : host,
        settings: { ...sandbox.settings, ...options.settings },
        armCaPem: sandbox.arm.caPem,
        instrumentArm: options.instrumentArm,
        verbose: options.verbose,
        armPollIntervalInMs: options.armPollIntervalInMs,
      },
      options.logFile,
    );
  }

  /** Forks the child and waits until its host listens. Warnings and errors go to `logFile` if given. */
  static async start(config: ChildHostConfig, logFile?: string): Promise<ChildHost> {
    const child = await HostProcess.start(
      {
        functionsDir: config.functionsDir,
        host: config.host,
        settings: config.settings,
        armCaPem: config.armCaPem,
        overrides: {
          ...(config.armPollIntervalInMs === 'default'
            ? {}
            : { armPollIntervalInMs: config.armPollIntervalInMs ?? 50 }),
          settings: { armBackoffInMs: 100, ...config.grantSettings },
        },
        // By default only what a person wants from a long run: warnings and errors, one line each.
        lines: config.verbose ? 'all' : 'warnings',
        extension: {
          module: __filename,
          options: {
            instrumentArm: config.instrumentArm,
            verbose: config.verbose,
          } satisfies InstrumentOptions,
        },
      },
      logFile,
    );
    return new ChildHost(child);
  }

  async stats(): Promise<ChildStats> {
    return (await this.process.ask<StatsAnswer>({ type: 'stats' })).stats;
  }

  /** SIGKILL: the process ends wherever it is — mid-ARM call, between two table writes, holding messages. */
  async kill(): Promise<void> {
    await this.process.kill();
  }

  /** A clean stop: the host finishes what it runs, then closes its clients. */
  async stop(): Promise<void> {
    await this.process.stop();
  }
}

// ---- in the child (loaded by dev/host/hostProcess.ts as its extension) -----------------------------------

interface Scope {
  key: string;
  intervals: Array<[number, number]>;
  calls: Record<string, number>;
}

const timings = new Map<string, ArmTiming>();
const scopes = new AsyncLocalStorage<Scope>();

/** Total length of the union of intervals. */
function unionLength(intervals: Array<[number, number]>): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -Infinity;
  for (const [s, e] of sorted) {
    if (e <= end) continue;
    total += e - Math.max(s, end);
    end = e;
  }
  return total;
}

/** Wraps every method of the network port so that calls made inside an invocation are timed. */
function instrumentNetwork(): void {
  const deps = services().deps;
  const inner = deps.network;
  deps.network = new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const scope = scopes.getStore();
        const started = performance.now();
        const returned = (value as (...a: unknown[]) => unknown).apply(target, args);
        // A listing (`listVms`) is an async iterable, not a promise: wrapping it in one broke every reconciler
        // sweep in the benchmarks. Its pages are read as it is iterated, so it is handed back untimed.
        if (returned && typeof returned === 'object' && Symbol.asyncIterator in returned) return returned;
        const result = Promise.resolve(returned);
        if (!scope) return result;
        return result.finally(() => {
          scope.intervals.push([started, performance.now()]);
          scope.calls[String(prop)] = (scope.calls[String(prop)] ?? 0) + 1;
        });
      };
    },
  });
}

/** Runs each queue and bus invocation in a scope named after its function and the request id it carries. */
function instrumentHandlers(): void {
  for (const f of declaredFunctions()) {
    if (f.trigger.type !== 'storageQueue' && f.trigger.type !== 'serviceBusQueue') continue;
    const fn = f as StorageQueueFunction | ServiceBusQueueFunction;
    const original = fn.handler;
    // The local host reads `handler` at each invocation, so replacing it here takes effect at once.
    fn.handler = async (message, context) => {
      const scope: Scope = {
        key: `${fn.name}:${requestIdOf(message)}`,
        intervals: [],
        calls: {},
      };
      const started = performance.now();
      try {
        return await scopes.run(scope, () => original(message, context));
      } finally {
        const t = timings.get(scope.key) ?? { armInMs: 0, invocationInMs: 0, invocations: 0, calls: {} };
        t.armInMs += unionLength(scope.intervals);
        t.invocationInMs += performance.now() - started;
        t.invocations += 1;
        for (const [k, n] of Object.entries(scope.calls)) t.calls[k] = (t.calls[k] ?? 0) + n;
        timings.set(scope.key, t);
      }
    };
  }
}

/**
 * Writes a line when each queue or bus invocation starts and ends, with its invocation id, request id and
 * delivery count, so a soak's log tells which delivery did what.
 */
function traceInvocations(): void {
  for (const f of declaredFunctions()) {
    if (f.trigger.type !== 'storageQueue' && f.trigger.type !== 'serviceBusQueue') continue;
    const fn = f as StorageQueueFunction | ServiceBusQueueFunction;
    const original = fn.handler;
    fn.handler = async (message, context) => {
      const m = (context.triggerMetadata ?? {}) as { dequeueCount?: number; deliveryCount?: number };
      const tag =
        `${fn.name} ${context.invocationId} request ${requestIdOf(message)} ` +
        `delivery ${m.dequeueCount ?? m.deliveryCount ?? '?'}`;
      const line = (what: string) =>
        process.stdout.write(`[${new Date().toISOString()}] ${process.pid} trace ${tag}: ${what}\n`);
      line('start');
      try {
        await original(message, context);
        line('done');
      } catch (err) {
        line(`threw ${String((err as Error)?.message ?? err).slice(0, 200)}`);
        throw err;
      }
    };
  }
}

function requestIdOf(message: unknown): string {
  let m = message;
  if (Buffer.isBuffer(m)) m = m.toString('utf8');
  if (typeof m === 'string') {
    try {
      m = JSON.parse(m) as unknown;
    } catch {
      return '?';
    }
  }
  const id = (m as { requestId?: unknown } | undefined)?.requestId;
  return typeof id === 'string' ? id : '?';
}

/** Called in the child once its host runs. */
export function extendHost(options: unknown): void {
  const o = options as InstrumentOptions;
  if (o.instrumentArm) {
    instrumentNetwork();
    instrumentHandlers();
  }
  if (o.verbose) traceInvocations();
}

/** Answers the parent's `stats` question. */
export function answer(message: { type: string }): StatsAnswer | undefined {
  if (message.type !== 'stats') return undefined;
  const mem = process.memoryUsage();
  return {
    type: 'stats',
    stats: {
      arm: Object.fromEntries(timings),
      maxRssInKiB: process.resourceUsage().maxRSS,
      rssInBytes: mem.rss,
      heapUsedInBytes: mem.heapUsed,
      cpuInMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    },
  };
}
