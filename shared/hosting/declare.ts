/**
 * A function is declared once — name, trigger, handler — and this module both registers it with
 * @azure/functions (what Azure runs, when the Functions worker runs this process) and records it, so the local
 * host binds the very same declarations.
 * There is no second list of functions to keep in step.
 *
 * A function file's handler is handed the services built at the host's start (`handler(input, context,
 * services)`, see host.ts); what is registered and recorded is that handler bound to them, as the host calls it.
 */
import { app } from '@azure/functions';
import { underFunctionsWorker } from './worker';
import { servicesFor, startHost, stopHost } from './host';
import type { HostServices } from './host';
import { problemOf } from '../http/handler';
import { MAX_DEQUEUE_COUNT } from '../names';
import type { HttpMethod, HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';

interface HttpTrigger {
  type: 'http';
  /** Route under /api, with `{name}` parameters, as Azure Functions writes routes. */
  route: string;
  methods: HttpMethod[];
}
interface StorageQueueTrigger {
  type: 'storageQueue';
  queueName: string;
  /** App-setting prefix of the storage connection. */
  connection: string;
}
interface ServiceBusQueueTrigger {
  type: 'serviceBusQueue';
  queueName: string;
  connection: string;
}
interface TimerTrigger {
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

/** What a function file declares: its handler takes the services as a third argument. */
type Definition<F extends FunctionDeclaration> = Omit<F, 'handler'> & {
  handler: (
    input: Parameters<F['handler']>[0],
    context: InvocationContext,
    services: HostServices,
  ) => ReturnType<F['handler']>;
};
export type HttpFunctionDefinition = Definition<HttpFunction> & {
  /**
   * The answer while the services could not be built (a broken core setting). Default: the problem+json the
   * error maps to, as every other failure of an HTTP function.
   */
  whenUnavailable?: (error: unknown, context: InvocationContext) => HttpResponseInit;
};
export type StorageQueueFunctionDefinition = Definition<StorageQueueFunction>;
export type ServiceBusQueueFunctionDefinition = Definition<ServiceBusQueueFunction>;
export type TimerFunctionDefinition = Definition<TimerFunction>;
type FunctionDefinition =
  | HttpFunctionDefinition
  | StorageQueueFunctionDefinition
  | ServiceBusQueueFunctionDefinition
  | TimerFunctionDefinition;

const declared: FunctionDeclaration[] = [];

/** Every function declared so far in this process, in declaration order. */
export function declaredFunctions(): readonly FunctionDeclaration[] {
  return declared;
}

// STYLE.md §12: under the worker the services are built when the host starts and closed when it stops (the local
// host calls the same two functions itself). A broken core setting is reported at start, by name; the host still
// runs so that GET /api/health answers 503 and says so, and every other invocation fails with that error.
if (underFunctionsWorker()) {
  app.hook.appStart(() => {
    try {
      startHost();
    } catch {
      // Logged by startHost as config.invalid; each invocation rethrows it.
    }
  });
  app.hook.appTerminate(() => stopHost());
}

export function declareFunction(definition: HttpFunctionDefinition): HttpFunction;
export function declareFunction(definition: StorageQueueFunctionDefinition): StorageQueueFunction;
export function declareFunction(definition: ServiceBusQueueFunctionDefinition): ServiceBusQueueFunction;
export function declareFunction(definition: TimerFunctionDefinition): TimerFunction;
export function declareFunction(definition: FunctionDefinition): FunctionDeclaration {
  if (declared.some((x) => x.name === definition.name))
    throw new Error(`function ${definition.name} is declared twice`);
  const d = bind(definition);
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
 * The handler as the host calls it: with the services for this invocation. A handler that declares no third
 * parameter uses none (the local host's probe functions, test/fixtures/hostFunctions): it is called without them,
 * so it runs with no configuration at all.
 */
function bind(definition: FunctionDefinition): FunctionDeclaration {
  const usesServices = definition.handler.length >= 3;
  const withServices =
    <I, R>(handler: (input: I, context: InvocationContext, services: HostServices) => Promise<R>) =>
    async (input: I, context: InvocationContext): Promise<R> =>
      handler(input, context, usesServices ? servicesFor(context) : (undefined as never));
  switch (definition.trigger.type) {
    case 'http': {
      // While the services are not built, an HTTP function answers the problem+json its error maps to, logged.
      const { whenUnavailable = problemOf, handler, ...rest } = definition as HttpFunctionDefinition;
      return {
        ...rest,
        handler: async (request, context) => {
          if (!usesServices) return handler(request, context, undefined as never);
          let services: HostServices;
          try {
            services = servicesFor(context);
          } catch (err) {
            return whenUnavailable(err, context);
          }
          return handler(request, context, services);
        },
      } satisfies HttpFunction;
    }
    case 'storageQueue': {
      const { handler, ...rest } = definition as StorageQueueFunctionDefinition;
      return { ...rest, handler: reportingPoison(rest.name, rest.trigger, withServices(handler)) };
    }
    case 'serviceBusQueue': {
      const { handler, ...rest } = definition as ServiceBusQueueFunctionDefinition;
      return { ...rest, handler: withServices(handler) } satisfies ServiceBusQueueFunction;
    }
    case 'timer': {
      const { handler, ...rest } = definition as TimerFunctionDefinition;
      return { ...rest, handler: withServices(handler) } satisfies TimerFunction;
    }
  }
}

/**
 * A storage queue handler that says so when it fails a message's last attempt: the Functions host then moves the
 * message to `<queue>-poison` (after host.json's maxDequeueCount, MAX_DEQUEUE_COUNT), where nothing would notice it.
 * Emits `jit.message.poisoned` and logs `message.poisoned`, then rethrows so the host does what it does. (Service Bus
 * dead-letters are watched by the namespace's DeadletteredMessages metric: infra/modules/alerts.bicep.)
 */
function reportingPoison(
  name: string,
  trigger: StorageQueueTrigger,
  handler: StorageQueueFunction['handler'],
): StorageQueueFunction['handler'] {
  return async (message, context) => {
    try {
      await handler(message, context);
    } catch (err) {
      const attempts = Number(context.triggerMetadata?.dequeueCount);
      if (attempts >= MAX_DEQUEUE_COUNT) {
        const body = message as
          { requestId?: unknown; notification?: { request?: { id?: unknown } } } | undefined;
        const requestId = body?.requestId ?? body?.notification?.request?.id;
        const fields = {
          queue: trigger.queueName,
          function: name,
          requestId: typeof requestId === 'string' ? requestId : undefined,
          attempts,
          error: String((err as Error)?.message ?? err).slice(0, 500),
        };
        try {
          const { deps } = servicesFor(context);
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
