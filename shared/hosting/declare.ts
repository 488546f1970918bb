/**
 * A function is declared once — name, trigger, handler — and this module both registers it with
 * @azure/functions (what Azure runs, when the Functions worker runs this process) and records it, so the local
 * host binds the very same declarations.
 * There is no second list of functions to keep in step.
 */
import { app } from '@azure/functions';
import { underFunctionsWorker } from './worker';
import { depsFor } from '../composition';
import { MAX_DEQUEUE_COUNT } from '../names';
import type { HttpMethod, HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';

export interface HttpTrigger {
  type: 'http';
  /** Route under /api, with `{name}` parameters, as Azure Functions writes routes. */
  route: string;
  methods: HttpMethod[];
}
export interface StorageQueueTrigger {
  type: 'storageQueue';
  queueName: string;
  /** App-setting prefix of the storage connection. */
  connection: string;
}
export interface ServiceBusQueueTrigger {
  type: 'serviceBusQueue';
  queueName: string;
  connection: string;
}
export interface TimerTrigger {
  type: 'timer';
  /** NCRONTAB with seconds: `{second} {minute} {hour} {day} {month} {day-of-week}`. */
  schedule: string;
  /** Never true: advised against in production (functions/reconcile.ts). The sandbox decides that for itself. */
  runOnStartup?: false;
}

export interface HttpFunction {
  name: string;
  trigger: HttpTrigger;
  handler: (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
}
export interface StorageQueueFunction {
  name: string;
  trigger: StorageQueueTrigger;
  handler: (message: unknown, context: InvocationContext) => Promise<void>;
}
export interface ServiceBusQueueFunction {
  name: string;
  trigger: ServiceBusQueueTrigger;
  handler: (message: unknown, context: InvocationContext) => Promise<void>;
}
export interface TimerFunction {
  name: string;
  trigger: TimerTrigger;
  handler: (timer: Timer, context: InvocationContext) => Promise<void>;
}

export type FunctionDeclaration =
  HttpFunction | StorageQueueFunction | ServiceBusQueueFunction | TimerFunction;

const declared: FunctionDeclaration[] = [];

/** Every function declared so far in this process, in declaration order. */
export function declaredFunctions(): readonly FunctionDeclaration[] {
  return declared;
}

/**
 * The host's start and stop hooks (STYLE.md §12), registered with @azure/functions under the worker. The local host
 * and tests build and close the services themselves.
 */
export function declareHostHooks(hooks: { appStart: () => void; appTerminate: () => unknown }): void {
  if (!underFunctionsWorker()) return;
  app.hook.appStart(hooks.appStart);
  app.hook.appTerminate(async () => {
    await hooks.appTerminate();
  });
}

export function declareFunction(declaration: HttpFunction): HttpFunction;
export function declareFunction(declaration: StorageQueueFunction): StorageQueueFunction;
export function declareFunction(declaration: ServiceBusQueueFunction): ServiceBusQueueFunction;
export function declareFunction(declaration: TimerFunction): TimerFunction;
export function declareFunction(d: FunctionDeclaration): FunctionDeclaration {
  if (declared.some((x) => x.name === d.name)) throw new Error(`function ${d.name} is declared twice`);
  if (d.trigger.type === 'storageQueue') {
    const queued = d as StorageQueueFunction;
    d = { ...queued, handler: reportingPoison(queued) };
  }
  declared.push(d);
  if (!underFunctionsWorker()) return d;
  switch (d.trigger.type) {
    case 'http':
      // Anonymous at the Functions level: App Service Authentication (or the JWT check) guards the app.
      app.http(d.name, {
        route: d.trigger.route,
        methods: d.trigger.methods,
        authLevel: 'anonymous',
        handler: d.handler as never,
      });
      break;
    case 'storageQueue':
      app.storageQueue(d.name, {
        queueName: d.trigger.queueName,
        connection: d.trigger.connection,
        handler: d.handler as never,
      });
      break;
    case 'serviceBusQueue':
      app.serviceBusQueue(d.name, {
        queueName: d.trigger.queueName,
        connection: d.trigger.connection,
        handler: d.handler as never,
      });
      break;
    case 'timer':
      app.timer(d.name, { schedule: d.trigger.schedule, runOnStartup: false, handler: d.handler as never });
      break;
  }
  return d;
}

/**
 * A storage queue handler that says so when it fails a message's last attempt: the Functions host then moves the
 * message to `<queue>-poison` (after host.json's maxDequeueCount, MAX_DEQUEUE_COUNT), where nothing would notice it.
 * Emits `jit.message.poisoned` and logs `message.poisoned`, then rethrows so the host does what it does. (Service Bus
 * dead-letters are watched by the namespace's DeadletteredMessages metric: infra/modules/alerts.bicep.)
 */
function reportingPoison(d: StorageQueueFunction): StorageQueueFunction['handler'] {
  return async (message, context) => {
    try {
      await d.handler(message, context);
    } catch (err) {
      const attempts = Number(context.triggerMetadata?.dequeueCount);
      if (attempts >= MAX_DEQUEUE_COUNT) {
        const body = message as
          { requestId?: unknown; notification?: { request?: { id?: unknown } } } | undefined;
        const requestId = body?.requestId ?? body?.notification?.request?.id;
        const fields = {
          queue: d.trigger.queueName,
          function: d.name,
          requestId: typeof requestId === 'string' ? requestId : undefined,
          attempts,
          error: String((err as Error)?.message ?? err).slice(0, 500),
        };
        try {
          const deps = depsFor(context);
          deps.signals.event('jit.message.poisoned', fields);
          deps.signals.add('jit.messages.poisoned', 1, { queue: fields.queue });
          deps.log.error('message.poisoned', fields);
        } catch {
          // The services themselves failed to build: the host's own log still has the error.
        }
      }
      throw err;
    }
  };
}
