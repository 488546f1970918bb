/**
 * The ARM REST surface the emulator serves: the Compute and Network paths the `@azure/arm-compute`
 * and `@azure/arm-network` clients call for VMs, NICs, VNets/subnets, NSGs and security rules, plus
 * the operation URLs those clients poll.
 */
import { ArmError, armErrors } from './errors';
import type { FaultInjector } from './faults';
import type { ArmModel, RuleAddress } from './model';
import { OperationRegistry, type OperationRecord } from './operations';

export type HttpMethod = 'GET' | 'PUT' | 'DELETE';

export interface ArmRequest {
  method: string;
  /** The path as sent (percent-encoded, no query). */
  path: string;
  apiVersion: string;
  body: string;
}

export interface ArmResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RouteContext {
  model: ArmModel;
  operations: OperationRegistry;
  faults: FaultInjector;
  /** Absolute URL on this server for a path. */
  absoluteUrl: (pathAndQuery: string) => string;
  /** Value of `Retry-After` on accepted and still-running operations. */
  operationRetryAfterInSeconds: number;
}

/** Reads a path parameter of the matched route (always present once the route matched). */
type Params = (name: string) => string;
type Handler = (params: Params, request: ArmRequest, context: RouteContext) => ArmResponse;

interface Route {
  segments: string[];
  handlers: Partial<Record<HttpMethod, Handler>>;
}

const RG = 'subscriptions/{s}/resourceGroups/{rg}/providers';
const SUB = 'subscriptions/{s}/providers';
const NSG = `${RG}/Microsoft.Network/networkSecurityGroups/{nsg}`;

const routes: Route[] = [
  route(`${RG}/Microsoft.Compute/virtualMachines/{vm}`, {
    GET: (p, _r, c) => ok(c.model.getVm(p('s'), p('rg'), p('vm'))),
  }),
  route(`${RG}/Microsoft.Compute/virtualMachines`, {
    GET: (p, _r, c) => ok({ value: c.model.listVms(p('s'), p('rg')) }),
  }),
  route(`${SUB}/Microsoft.Compute/virtualMachines`, {
    GET: (p, _r, c) => ok({ value: c.model.listVms(p('s')) }),
  }),
  route(`${RG}/Microsoft.Network/networkInterfaces/{nic}`, {
    GET: (p, _r, c) => ok(c.model.getNic(p('s'), p('rg'), p('nic'))),
  }),
  route(`${RG}/Microsoft.Network/networkInterfaces`, {
    GET: (p, _r, c) => ok({ value: c.model.listNics(p('s'), p('rg')) }),
  }),
  // The subscription-wide listings (NetworkInterfaces_ListAll, VirtualNetworks_List and _ListAll in
  // specification/network/resource-manager/Microsoft.Network/stable/2025-05-01/networkInterface.json and
  // virtualNetwork.json), one page each here; Azure pages them with nextLink.
  route(`${SUB}/Microsoft.Network/networkInterfaces`, {
    GET: (p, _r, c) => ok({ value: c.model.listNics(p('s')) }),
  }),
  route(`${RG}/Microsoft.Network/virtualNetworks`, {
    GET: (p, _r, c) => ok({ value: c.model.listVnets(p('s'), p('rg')) }),
  }),
  route(`${SUB}/Microsoft.Network/virtualNetworks`, {
    GET: (p, _r, c) => ok({ value: c.model.listVnets(p('s')) }),
  }),
  route(`${RG}/Microsoft.Network/virtualNetworks/{vnet}`, {
    GET: (p, _r, c) => ok(c.model.getVnet(p('s'), p('rg'), p('vnet'))),
  }),
  route(`${RG}/Microsoft.Network/virtualNetworks/{vnet}/subnets`, {
    GET: (p, _r, c) => ok({ value: c.model.listSubnets(p('s'), p('rg'), p('vnet')) }),
  }),
  route(`${RG}/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}`, {
    GET: (p, _r, c) => ok(c.model.getSubnet(p('s'), p('rg'), p('vnet'), p('subnet'))),
  }),
  route(NSG, {
    GET: (p, _r, c) => ok(c.model.getNsg(p('s'), p('rg'), p('nsg'))),
  }),
  route(`${RG}/Microsoft.Network/networkSecurityGroups`, {
    GET: (p, _r, c) => ok({ value: c.model.listNsgs(p('s'), p('rg')) }),
  }),
  route(`${SUB}/Microsoft.Network/networkSecurityGroups`, {
    GET: (p, _r, c) => ok({ value: c.model.listNsgs(p('s')) }),
  }),
  route(`${NSG}/securityRules`, {
    GET: (p, _r, c) => ok({ value: c.model.listRules(p('s'), p('rg'), p('nsg')) }),
  }),
  route(`${NSG}/securityRules/{rule}`, {
    GET: (p, _r, c) => ok(c.model.getRule(ruleAddress(p))),
    PUT: putRule,
    DELETE: deleteRule,
  }),
  route(`${SUB}/Microsoft.Network/locations/{location}/operations/{operation}`, {
    GET: operationStatus,
  }),
  route(`${SUB}/Microsoft.Network/locations/{location}/operationResults/{operation}`, {
    GET: operationResult,
  }),
];

/**
 * Serves one ARM request (already authenticated).
 * @throws ArmError for every ARM-level failure; the caller turns it into the response.
 */
export function serveArmRequest(request: ArmRequest, context: RouteContext): ArmResponse {
  // A trailing slash names the same resource.
  const segments = request.path
    .replace(/^\/|\/$/g, '')
    .split('/')
    .map(decodeSegment);
  for (const candidate of routes) {
    const params = match(candidate.segments, segments);
    if (!params) continue;
    const handler = candidate.handlers[request.method as HttpMethod];
    if (!handler) throw armErrors.methodNotAllowed(request.method);
    return handler(params, request, context);
  }
  throw armErrors.unsupportedRoute(request.method, request.path);
}

/**
 * PUT answers `201` (created) or `200` (updated) with the rule as `Updating`, `Azure-AsyncOperation` and
 * `Retry-After`, and no `Location`: the spec marks the operation `final-state-via: azure-async-operation`
 * (specification/network/resource-manager/Microsoft.Network/stable/2025-05-01/networkSecurityGroup.json,
 * SecurityRules_CreateOrUpdate), and Network RP's recorded PUT carries exactly these headers (Azure/azure-sdk-for-js
 * sdk/network/arm-network/recordings/node/network_test/recording_subnets_create_test.json). Clients poll the status
 * URL until `Succeeded` or `Failed`, then GET the rule ("Track asynchronous Azure operations",
 * https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
 */
function putRule(params: Params, request: ArmRequest, context: RouteContext): ArmResponse {
  const result = context.model.beginPutRule(
    ruleAddress(params),
    parseJsonBody(request.body),
    () => context.faults.takeOperationFault(request.path),
    request.apiVersion,
  );
  return {
    status: result.created ? 201 : 200,
    body: result.rule,
    headers: {
      'Azure-AsyncOperation': statusUrl(result.operation, context),
      'Azure-AsyncNotification': 'Enabled',
      'Retry-After': String(context.operationRetryAfterInSeconds),
    },
  };
}

/**
 * DELETE answers `202` with `Azure-AsyncOperation`, `Location` (the operation result) and `Retry-After`, or `204`
 * when there is nothing to delete: `final-state-via: location` in the same spec (SecurityRules_Delete), headers as
 * in Network RP's recorded DELETE (recording_subnets_begindeleteandwait_test.json beside the one above).
 */
function deleteRule(params: Params, request: ArmRequest, context: RouteContext): ArmResponse {
  const operation = context.model.beginDeleteRule(
    ruleAddress(params),
    () => context.faults.takeOperationFault(request.path),
    request.apiVersion,
  );
  if (!operation) return { status: 204 };
  return {
    status: 202,
    headers: {
      'Azure-AsyncOperation': statusUrl(operation, context),
      'Azure-AsyncNotification': 'Enabled',
      Location: resultUrl(operation, context),
      'Retry-After': String(context.operationRetryAfterInSeconds),
    },
  };
}

function operationStatus(params: Params, _request: ArmRequest, context: RouteContext): ArmResponse {
  const operation = findOperation(params, context);
  return {
    status: 200,
    body: OperationRegistry.statusBody(operation),
    headers: stillRunning(operation, context),
  };
}

function operationResult(params: Params, _request: ArmRequest, context: RouteContext): ArmResponse {
  const operation = findOperation(params, context);
  if (operation.status === 'InProgress') {
    return {
      status: 202,
      headers: { Location: resultUrl(operation, context), ...stillRunning(operation, context) },
    };
  }
  if (operation.error) throw new ArmError(500, operation.error.code, operation.error.message);
  return { status: 204 };
}

function findOperation(params: Params, context: RouteContext): OperationRecord {
  context.model.requireSubscription(params('s'));
  const operation = context.operations.get(params('operation'));
  if (!operation || operation.subscriptionId.toLowerCase() !== params('s').toLowerCase()) {
    throw armErrors.operationNotFound(params('operation'));
  }
  return operation;
}

/** A running operation's status carries `Retry-After`; a finished one's does not (the PUT recording above). */
function stillRunning(operation: OperationRecord, context: RouteContext): Record<string, string> {
  return operation.status === 'InProgress'
    ? { 'Retry-After': String(context.operationRetryAfterInSeconds) }
    : {};
}

function statusUrl(operation: OperationRecord, context: RouteContext): string {
  return context.absoluteUrl(
    `${OperationRegistry.statusPath(operation)}?api-version=${operation.apiVersion}`,
  );
}

function resultUrl(operation: OperationRecord, context: RouteContext): string {
  return context.absoluteUrl(
    `${OperationRegistry.resultPath(operation)}?api-version=${operation.apiVersion}`,
  );
}

function ruleAddress(params: Params): RuleAddress {
  return {
    subscriptionId: params('s'),
    resourceGroup: params('rg'),
    nsgName: params('nsg'),
    ruleName: params('rule'),
  };
}

function parseJsonBody(body: string): unknown {
  if (body.trim() === '') throw armErrors.invalidRequestFormat('The request body is empty.');
  try {
    return JSON.parse(body) as unknown;
  } catch (error) {
    throw armErrors.invalidRequestFormat(error instanceof Error ? error.message : String(error));
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw armErrors.invalidRequestFormat(`The path segment '${segment}' is not valid percent-encoding.`);
  }
}

function ok(body: unknown): ArmResponse {
  return { status: 200, body };
}

function route(pattern: string, handlers: Partial<Record<HttpMethod, Handler>>): Route {
  return { segments: pattern.split('/'), handlers };
}

/** Matches path segments against a pattern; literals compare case-insensitively, as ARM does. */
function match(pattern: string[], segments: string[]): Params | undefined {
  if (pattern.length !== segments.length) return undefined;
  const values = new Map<string, string>();
  for (const [i, expected] of pattern.entries()) {
    const actual = segments[i] ?? '';
    if (expected.startsWith('{')) {
      if (actual === '') return undefined;
      values.set(expected.slice(1, -1), actual);
    } else if (expected.toLowerCase() !== actual.toLowerCase()) {
      return undefined;
    }
  }
  return (name) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`Route has no parameter {${name}}.`);
    return value;
  };
}
