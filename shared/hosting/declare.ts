/**
 * A function is declared once — name, trigger, handler — and this module both registers it with
 * @azure/functions (what Azure runs) and records it, so the local host binds the very same declarations.
 * There is no second list of functions to keep in step.
 */
import { app } from '@azure/functions';
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
  // No `runOnStartup`: advised against in production (functions/reconcile.ts); the sandbox decides that itself.
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

export function declareFunction(declaration: HttpFunction): HttpFunction;
export function declareFunction(declaration: StorageQueueFunction): StorageQueueFunction;
export function declareFunction(declaration: ServiceBusQueueFunction): ServiceBusQueueFunction;
export function declareFunction(declaration: TimerFunction): TimerFunction;
export function declareFunction(d: FunctionDeclaration): FunctionDeclaration {
  if (declared.some((x) => x.name === d.name)) throw new Error(`function ${d.name} is declared twice`);
  declared.push(d);
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
      app.timer(d.name, { schedule: d.trigger.schedule, handler: d.handler as never });
      break;
  }
  return d;
}
