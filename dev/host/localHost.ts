/**
 * The local host: binds the same function declarations Azure runs to the sandbox — HTTP under /api, Storage
 * Queue pollers, Service Bus receivers and timers — reproducing the Functions host's semantics that matter to
 * correctness: queue dequeue counts, the retry delay (visibilityTimeout) and the move to `<queue>-poison`; a queue
 * message kept invisible for as long as its function runs; Service Bus peek-lock with the lock renewed for
 * `maxAutoLockRenewalDuration`, complete on success and abandon on throw; timers that run on their schedule only
 * (`runOnStartup` is the sandbox's choice, never a declaration's); JSON bodies handed over parsed.
 */
import { EventEmitter } from 'node:events';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { HttpRequest, HttpResponse, InvocationContext } from '@azure/functions';
import type { HttpResponseInit, LogLevel, Timer } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import type { DequeuedMessageItem } from '@azure/storage-queue';
import { ServiceBusClient } from '@azure/service-bus';
import type { ServiceBusReceiver } from '@azure/service-bus';
import { Cron } from 'croner';
import { declaredFunctions } from '../../shared/hosting/declare';
import { startHost, stopHost } from '../../shared/hosting/host';
import type {
  FunctionDeclaration,
  HttpFunction,
  ServiceBusQueueFunction,
  StorageQueueFunction,
  TimerFunction,
} from '../../shared/hosting/declare';
import type { HostSettings } from './hostJson';

export interface LocalHostOptions {
  /** Folder of compiled function files; each is loaded once, and its declaration binds. */
  functionsDir: string;
  host: HostSettings;
  /** App settings, for resolving trigger connections by name (as the Functions host does). */
  settings: Record<string, string | undefined>;
  httpPort?: number;
  httpHost?: string;
  /** Where log lines go; default: the console. */
  log?: (level: LogLevel, functionName: string, message: string) => void;
  /** Called once HTTP listens (its port known), before any trigger binds and so before any invocation. */
  onListening?: (baseUrl: string) => void;
  /**
   * How long a dequeued storage-queue message stays invisible; renewed at half of it for as long as its function
   * runs. Default 10 minutes, the Functions host's own fixed value (QUEUE_MESSAGE_LEASE_IN_MS); tests shorten it.
   */
  queueMessageLeaseInMs?: number;
  /**
   * Timer functions, by name, to run once at start as `runOnStartup: true` would. None by default, as in production
   * (functions/reconcile.ts says why); the sandbox names the reconciler, so that a fresh sandbox is swept at once.
   */
  runOnStartup?: readonly string[];
  /**
   * Build the app's services when the host starts and close them when it stops, as Azure's `appStart` /
   * `appTerminate` do (shared/hosting/host.ts). Default true; false only for a host of probe functions that use no
   * services (test/fixtures/hostFunctions).
   */
  withServices?: boolean;
}

/**
 * The queue listener of the Functions host dequeues with a 10-minute visibility timeout and, while the function
 * runs, updates the message's visibility every half of it; it stops when the function ends or when the update says
 * the message is gone or no longer ours (404, pop receipt mismatch), and tries again sooner after a server error.
 * Source: Azure/azure-sdk-for-net, sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/
 * QueueListener.cs (`_visibilityTimeout = TimeSpan.FromMinutes(10)`, `CreateUpdateMessageVisibilityTimer`: "Update a
 * message's visibility when it is halfway to expiring") and src/Shared/UpdateQueueMessageVisibilityCommand.cs.
 */
export const QUEUE_MESSAGE_LEASE_IN_MS = 10 * 60_000;

/** One finished invocation, emitted as `invocation` for tests and the console. */
export interface InvocationRecord {
  functionName: string;
  invocationId: string;
  ok: boolean;
  error?: string;
  durationInMs: number;
}

export class LocalHost extends EventEmitter {
  private server?: Server;
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly wakeups = new Set<() => void>();
  private readonly receivers: ServiceBusReceiver[] = [];
  private readonly busClients: ServiceBusClient[] = [];
  private readonly crons: Cron[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private port = 0;

  constructor(private readonly options: LocalHostOptions) {
    super();
  }

  get httpPort(): number {
    return this.port;
  }

  get baseUrl(): string {
    return `http://${this.options.httpHost ?? '127.0.0.1'}:${this.port}`;
  }

  /**
   * Loads the function files, listens for HTTP, starts the host as Azure's `appStart` does (the services are
   * built; a broken core setting rejects here, naming it), then binds every other trigger.
   */
  async start(): Promise<FunctionDeclaration[]> {
    for (const file of readdirSync(this.options.functionsDir)
      .filter((f) => f.endsWith('.js'))
      .sort()) {
      // Loading a function file is what declares it, exactly as the Functions host loads `main`.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(join(this.options.functionsDir, file));
    }
    const functions = [...declaredFunctions()];
    this.running = true;
    await this.startHttp(functions.filter((f): f is HttpFunction => f.trigger.type === 'http'));
    this.options.onListening?.(this.baseUrl);
    // After onListening: the sandbox's settings name the port HTTP got (the links in mail), read when built.
    try {
      if (this.options.withServices !== false) startHost();
    } catch (err) {
      await this.stop();
      throw err;
    }
    for (const f of functions) {
      if (f.trigger.type === 'storageQueue') this.loops.push(this.pollQueue(f as StorageQueueFunction));
      if (f.trigger.type === 'serviceBusQueue') this.subscribe(f as ServiceBusQueueFunction);
      if (f.trigger.type === 'timer') this.schedule(f as TimerFunction);
    }
    return functions;
  }

  /** Stops taking work, waits for what is running, and closes every client (the services' too, as `appTerminate`). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const c of this.crons) c.stop();
    for (const wake of this.wakeups) wake();
    await Promise.allSettled(this.receivers.map((r) => r.close()));
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.inFlight]);
    await Promise.allSettled(this.busClients.map((c) => c.close()));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    if (this.options.withServices !== false) await stopHost();
  }

  /** `%NAME%` in a trigger property is an app setting, as the Functions host resolves it. */
  private resolveSetting(value: string): string {
    return value.replace(/%([^%]+)%/g, (_, name: string) => {
      const v = this.options.settings[name];
      if (v === undefined) throw new Error(`app setting ${name} (used as %${name}%) is not set`);
      return v;
    });
  }

  private connection(name: string): string {
    const value = this.options.settings[name];
    if (!value) throw new Error(`connection setting ${name} is not set`);
    return value;
  }

  /** Runs one invocation with a fresh context, tracks it, and reports how it ended. */
  private async invoke<T>(
    functionName: string,
    triggerMetadata: Record<string, unknown>,
    run: (ctx: InvocationContext) => Promise<T>,
  ): Promise<T> {
    const invocationId = randomUUID();
    const context = new InvocationContext({
      invocationId,
      functionName,
      triggerMetadata,
      logHandler: (level, ...args) => this.log(level, functionName, args.map(String).join(' ')),
    });
    const started = Date.now();
    const p = run(context);
    this.inFlight.add(p);
    try {
      const result = await p;
      this.emit('invocation', {
        functionName,
        invocationId,
        ok: true,
        durationInMs: Date.now() - started,
      } satisfies InvocationRecord);
      return result;
    } catch (err) {
      const error = (err as Error)?.stack ?? String(err);
      this.log('error', functionName, `invocation ${invocationId} failed: ${error}`);
      this.emit('invocation', {
        functionName,
        invocationId,
        ok: false,
        error,
        durationInMs: Date.now() - started,
      } satisfies InvocationRecord);
      throw err;
    } finally {
      this.inFlight.delete(p);
    }
  }

  private log(level: LogLevel, functionName: string, message: string): void {
    if (this.options.log) return this.options.log(level, functionName, message);
    const line = `[${new Date().toISOString()}] ${functionName}: ${message}`;
    if (level === 'error' || level === 'critical') console.error(line);
    else if (level === 'warning') console.warn(line);
    else console.log(line);
  }

  // ---- HTTP -------------------------------------------------------------------------------------------

  private async startHttp(functions: HttpFunction[]): Promise<void> {
    const routes = functions.map((f) => ({ f, ...compileRoute(f.trigger.route) }));
    this.server = createServer((req, res) => {
      void this.serveHttp(routes, req, res).catch((err) => {
        this.log('error', 'http', String(err));
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.options.httpPort ?? 7071, this.options.httpHost ?? '127.0.0.1', () =>
        resolve(),
      );
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private async serveHttp(
    routes: Array<{ f: HttpFunction; regex: RegExp; names: string[] }>,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const method = (req.method ?? 'GET').toUpperCase();
    let match: { f: HttpFunction; params: Record<string, string> } | undefined;
    if (url.pathname.startsWith('/api/')) {
      const path = decodeURIComponent(url.pathname.slice(5));
      for (const r of routes) {
        const m = r.regex.exec(path);
        if (m && r.f.trigger.methods.includes(method as never)) {
          match = { f: r.f, params: Object.fromEntries(r.names.map((n, i) => [n, m[i + 1] ?? ''])) };
          break;
        }
      }
    }
    if (!match) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      // The Functions front end caps bodies at 100 MB; the app enforces its own smaller limit.
      if (size > 100 * 1024 * 1024) {
        res.writeHead(413).end();
        return;
      }
      chunks.push(chunk as Buffer);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    // Like Azure's front end: append the client's address to X-Forwarded-For.
    const remote = req.socket.remoteAddress ?? '';
    headers['x-forwarded-for'] = headers['x-forwarded-for']
      ? `${headers['x-forwarded-for']}, ${remote}`
      : remote;
    const request = new HttpRequest({
      method,
      url: url.toString(),
      headers,
      query: Object.fromEntries(url.searchParams),
      params: match.params,
      body: { bytes: Buffer.concat(chunks) },
    });
    let init: HttpResponseInit;
    try {
      init = await this.invoke(
        match.f.name,
        { headers, query: Object.fromEntries(url.searchParams), ...match.params },
        (ctx) => match.f.handler(request, ctx),
      );
    } catch {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end('Internal Server Error');
      return;
    }
    const response = new HttpResponse(init);
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => (out[k] = v));
    const body = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, out).end(body);
  }

  // ---- Storage queues ---------------------------------------------------------------------------------

  /**
   * Polls one queue the way the Functions host's queue listener does:
   * - a batch is handed out without waiting for it: the next one is fetched as soon as no more than
   *   `newBatchThreshold` messages are still running (so one slow invocation does not hold up the next message);
   * - an empty poll backs off from 100 ms, growing by about 100 ms × 2^n (±20%) up to `maxPollingInterval`, and
   *   starts again from 100 ms once a message was found.
   */
  private async pollQueue(f: StorageQueueFunction): Promise<void> {
    const cfg = this.options.host.queues;
    const connection = this.connection(f.trigger.connection);
    const queueName = this.resolveSetting(f.trigger.queueName);
    const queue = new QueueClient(connection, queueName);
    const poison = new QueueClient(connection, `${queueName}-poison`);
    const backoff = new PollingBackoff(cfg.maxPollingIntervalInMs);
    const running = new Set<Promise<void>>();
    let found = false;
    let queueExists = false;
    while (this.running) {
      while (running.size > cfg.newBatchThreshold && this.running) await Promise.race(running);
      if (!this.running) break;
      let messages: DequeuedMessageItem[] = [];
      try {
        // Inside the loop, as the host checks it: storage being down at start-up is retried, not fatal.
        if (!queueExists) {
          await queue.createIfNotExists();
          queueExists = true;
        }
        // Invisible for the lease, which runQueueMessage renews while the function runs.
        messages = (
          await queue.receiveMessages({
            numberOfMessages: Math.min(32, cfg.batchSize),
            visibilityTimeout: this.leaseInSeconds,
          })
        ).receivedMessageItems;
      } catch (err) {
        if (!this.running) break;
        queueExists = false;
        this.log('warning', f.name, `polling ${f.trigger.queueName} failed: ${String(err)}`);
      }
      if (messages.length) {
        found = true;
        for (const m of messages) {
          const p: Promise<void> = this.runQueueMessage(f, queue, poison, m).finally(() => running.delete(p));
          running.add(p);
        }
        continue;
      }
      await this.sleep(backoff.next(found));
      found = false;
    }
    await Promise.allSettled([...running]);
  }

  private async runQueueMessage(
    f: StorageQueueFunction,
    queue: QueueClient,
    poison: QueueClient,
    m: DequeuedMessageItem,
  ): Promise<void> {
    const cfg = this.options.host.queues;
    const text =
      cfg.messageEncoding === 'base64'
        ? Buffer.from(m.messageText, 'base64').toString('utf8')
        : m.messageText;
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: the host hands the text over as a string.
    }
    const lease = new QueueMessageLease(
      queue,
      m,
      this.leaseInSeconds,
      this.options.host.functionTimeoutInMs,
      (e) => this.log('warning', f.name, `message ${m.messageId}: ${e}`),
    );
    let ok = false;
    try {
      await this.invoke(
        f.name,
        {
          id: m.messageId,
          dequeueCount: m.dequeueCount,
          insertionTime: m.insertedOn,
          expirationTime: m.expiresOn,
          popReceipt: m.popReceipt,
        },
        (ctx) => f.handler(body, ctx),
      );
      ok = true;
    } catch {
      // Settled below.
    }
    // A renewal still in flight would change the pop receipt under the delete or update that follows.
    const popReceipt = await lease.end();
    if (ok) {
      // The lease lost (another instance has the message now) or the delete failing: the message comes back.
      await queue
        .deleteMessage(m.messageId, popReceipt)
        .catch((err: unknown) =>
          this.log('warning', f.name, `could not delete message ${m.messageId}: ${String(err)}`),
        );
      return;
    }
    try {
      if (m.dequeueCount >= cfg.maxDequeueCount) {
        await poison.createIfNotExists();
        await poison.sendMessage(m.messageText);
        await queue.deleteMessage(m.messageId, popReceipt);
        this.log(
          'warning',
          f.name,
          `message ${m.messageId} moved to ${f.trigger.queueName}-poison after ${m.dequeueCount} attempts`,
        );
      } else {
        await queue.updateMessage(
          m.messageId,
          popReceipt,
          undefined,
          Math.round(cfg.visibilityTimeoutInMs / 1000),
        );
      }
    } catch (err) {
      // The message becomes visible again when its invisibility ends: nothing is lost.
      this.log('warning', f.name, `could not settle message ${m.messageId}: ${String(err)}`);
    }
  }

  /** Queue visibility is set in whole seconds. */
  private get leaseInSeconds(): number {
    return Math.max(1, Math.ceil((this.options.queueMessageLeaseInMs ?? QUEUE_MESSAGE_LEASE_IN_MS) / 1000));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.wakeups.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.wakeups.add(wake);
    });
  }

  // ---- Service Bus -------------------------------------------------------------------------------------

  private subscribe(f: ServiceBusQueueFunction): void {
    const cfg = this.options.host.serviceBus;
    const client = new ServiceBusClient(this.connection(f.trigger.connection));
    this.busClients.push(client);
    const receiver = client.createReceiver(this.resolveSetting(f.trigger.queueName), {
      receiveMode: 'peekLock',
      maxAutoLockRenewalDurationInMs: cfg.maxAutoLockRenewalDurationInMs,
    });
    this.receivers.push(receiver);
    receiver.subscribe(
      {
        processMessage: async (message) => {
          await this.invoke(
            f.name,
            {
              messageId: message.messageId,
              deliveryCount: message.deliveryCount,
              sequenceNumber: message.sequenceNumber?.toString(),
              enqueuedTimeUtc: message.enqueuedTimeUtc,
              lockToken: message.lockToken,
            },
            (ctx) => f.handler(message.body, ctx),
          );
        },
        processError: async (args) => {
          if (this.running) this.log('warning', f.name, `Service Bus receiver: ${String(args.error)}`);
        },
      },
      { autoCompleteMessages: cfg.autoCompleteMessages, maxConcurrentCalls: cfg.maxConcurrentCalls },
    );
  }

  // ---- Timers ------------------------------------------------------------------------------------------

  private schedule(f: TimerFunction): void {
    const fire = (isPastDue: boolean) =>
      this.invoke(f.name, {}, (ctx) =>
        f.handler(
          { isPastDue, schedule: { adjustForDST: false }, scheduleStatus: undefined } as unknown as Timer,
          ctx,
        ),
      ).catch(() => undefined);
    // protect: a run still going when the next is due is skipped, as the host's singleton lock does.
    const cron = new Cron(this.resolveSetting(f.trigger.schedule), { timezone: 'UTC', protect: true }, () =>
      fire(false),
    );
    this.crons.push(cron);
    if (this.options.runOnStartup?.includes(f.name)) void fire(false);
  }
}

/**
 * Keeps a dequeued message invisible while its function runs, as the Functions host's queue listener does
 * (QUEUE_MESSAGE_LEASE_IN_MS): the visibility is set again to the lease every half of it, and sooner after a failed
 * attempt. It stops for good when the message is gone or another dequeue took it (404, 400 pop receipt mismatch),
 * and at `functionTimeout`, past which the Functions host terminates the process (so nothing would renew it).
 */
class QueueMessageLease {
  private popReceipt: string;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly until: number;

  constructor(
    private readonly queue: QueueClient,
    private readonly message: DequeuedMessageItem,
    private readonly leaseInSeconds: number,
    functionTimeoutInMs: number | undefined,
    private readonly warn: (event: string) => void,
  ) {
    this.popReceipt = message.popReceipt;
    this.until =
      functionTimeoutInMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + functionTimeoutInMs;
    this.arm((leaseInSeconds * 1000) / 2);
  }

  /** Stops renewing and returns the pop receipt the message now has. */
  async end(): Promise<string> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.renewing;
    return this.popReceipt;
  }

  private arm(delayInMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.renewing = this.renew();
    }, delayInMs);
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    if (Date.now() >= this.until) {
      this.warn('functionTimeout exceeded: its visibility is no longer renewed');
      return;
    }
    const halfway = (this.leaseInSeconds * 1000) / 2;
    try {
      const r = await this.queue.updateMessage(
        this.message.messageId,
        this.popReceipt,
        undefined,
        this.leaseInSeconds,
      );
      if (r.popReceipt) this.popReceipt = r.popReceipt;
      this.arm(halfway);
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404 || status === 400) {
        this.warn(`lost while running (${status}); another instance may run it again`);
        return;
      }
      this.arm(halfway / 4);
    }
  }
}

/** The Functions host's shortest wait between queue polls (QueuePollingIntervals.Minimum). */
export const MIN_POLLING_INTERVAL_IN_MS = 100;

/**
 * The queue listener's randomized exponential back-off: after a poll that found messages, the shortest wait;
 * after each empty one, the shortest wait plus 100 ms × 2^(n-1) × (0.8..1.2), until `maxInMs`, which then holds.
 */
export class PollingBackoff {
  private current = 0;
  private exponent = 0;

  constructor(
    private readonly maxInMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(foundMessages: boolean): number {
    const min = Math.min(MIN_POLLING_INTERVAL_IN_MS, this.maxInMs);
    if (foundMessages || this.current === 0) {
      this.current = min;
      this.exponent = 1;
    } else if (this.current < this.maxInMs) {
      const grown = min + (0.8 + 0.4 * this.random()) * 2 ** (this.exponent - 1) * MIN_POLLING_INTERVAL_IN_MS;
      if (grown < this.maxInMs) {
        this.current = grown;
        this.exponent++;
      } else {
        this.current = this.maxInMs;
      }
    }
    return this.current;
  }
}

/** Azure Functions route templates: literal segments and `{name}` / `{name?}` / `{name:constraint}` parameters. */
export function compileRoute(route: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const parts = route.split('/').map((seg) => {
    const m = /^\{([A-Za-z_][\w]*)(?::[^}?]+)?(\?)?\}$/.exec(seg);
    if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    names.push(m[1] ?? '');
    return m[2] ? '([^/]*)' : '([^/]+)';
  });
  return { regex: new RegExp(`^${parts.join('/')}/?$`, 'i'), names };
}
