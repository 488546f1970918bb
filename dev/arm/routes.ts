/**
 * The ARM REST surface the emulator serves: the Compute and Network paths the `@azure/arm-compute`
 * and `@azure/arm-network` clients call for VMs, NICs, VNets/subnets, NSGs and security rules, plus
 * the operation URLs those clients poll.
 */
import type { Principal, RoleAssignments } from './authorization';
import { ArmError, armErrors } from './errors';
import type { FaultInjector } from './faults';
import type { LockRegistry } from './locks';
import type { ArmModel, RuleAddress } from './model';
import { OperationRegistry, type OperationRecord } from './operations';
import type { AppServiceSites } from './sites';

type HttpMethod = 'GET' | 'PUT' | 'DELETE';

export interface ArmRequest {
  method: string;
  /** The path as sent (percent-encoded, no query). */
  path: string;
  apiVersion: string;
  body: string;
  /** Query parameters other than api-version (`$filter`). */
  query?: URLSearchParams;
  /** Request headers the routes read (`if-match`), lower-cased. */
  headers?: Record<string, string | undefined>;
}

export interface ArmResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RouteContext {
  model: ArmModel;
  /** Function apps' authentication settings (dev/arm/sites.ts). */
  sites: AppServiceSites;
  operations: OperationRegistry;
  faults: FaultInjector;
  /** Absolute URL on this server for a path. */
  absoluteUrl: (pathAndQuery: string) => string;
  /** Value of `Retry-After` on accepted and still-running operations. */
  operationRetryAfterInSeconds: number;
  locks: LockRegistry;
  rbac: RoleAssignments;
  /** Who sent the request (from its bearer token). */
  principal: Principal;
}

/** Reads a path parameter of the matched route (always present once the route matched). */
type Params = (name: string) => string;
type Handler = (params: Params, request: ArmRequest, context: RouteContext) => ArmResponse;

/**
 * The RBAC action a method of a route needs (Microsoft's resource provider operations list,
 * https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations). A collection GET is
 * filtered to what the caller may read when it may not read the whole collection.
 */
type Permission = { action: string; collection?: boolean };

interface Route {
  segments: string[];
  handlers: Partial<Record<HttpMethod, Handler>>;
  permissions: Partial<Record<HttpMethod, Permission>>;
}

const RG = 'subscriptions/{s}/resourceGroups/{rg}/providers';
const SUB = 'subscriptions/{s}/providers';
const NSG = `${RG}/Microsoft.Network/networkSecurityGroups/{nsg}`;

const VM_READ = { action: 'Microsoft.Compute/virtualMachines/read' };
const NIC_READ = { action: 'Microsoft.Network/networkInterfaces/read' };
const VNET_READ = { action: 'Microsoft.Network/virtualNetworks/read' };
const SUBNET_READ = { action: 'Microsoft.Network/virtualNetworks/subnets/read' };
const NSG_READ = { action: 'Microsoft.Network/networkSecurityGroups/read' };
const RULE_READ = { action: 'Microsoft.Network/networkSecurityGroups/securityRules/read' };
const list = (p: Permission): Permission => ({ ...p, collection: true });

const routes: Route[] = [
  route(
    `${RG}/Microsoft.Compute/virtualMachines/{vm}`,
    { GET: (p, _r, c) => ok(c.model.getVm(p('s'), p('rg'), p('vm'))) },
    { GET: VM_READ },
  ),
  route(
    `${RG}/Microsoft.Compute/virtualMachines`,
    { GET: (p, _r, c) => ok({ value: c.model.listVms(p('s'), p('rg')) }) },
    { GET: list(VM_READ) },
  ),
  route(
    `${SUB}/Microsoft.Compute/virtualMachines`,
    { GET: (p, _r, c) => ok({ value: c.model.listVms(p('s')) }) },
    { GET: list(VM_READ) },
  ),
  route(
    `${RG}/Microsoft.Network/networkInterfaces/{nic}`,
    { GET: (p, _r, c) => ok(c.model.getNic(p('s'), p('rg'), p('nic'))) },
    { GET: NIC_READ },
  ),
  route(
    `${RG}/Microsoft.Network/networkInterfaces`,
    { GET: (p, _r, c) => ok({ value: c.model.listNics(p('s'), p('rg')) }) },
    { GET: list(NIC_READ) },
  ),
  // The listings the reconciler reads a policy scope's paths from (NetworkInterfaces_ListAll, VirtualNetworks_List
  // and _ListAll in specification/network/resource-manager/Microsoft.Network/stable/2025-05-01/networkInterface.json
  // and virtualNetwork.json), one page each here; Azure pages them with nextLink.
  route(
    `${SUB}/Microsoft.Network/networkInterfaces`,
    { GET: (p, _r, c) => ok({ value: c.model.listNics(p('s')) }) },
    { GET: list(NIC_READ) },
  ),
  route(
    `${RG}/Microsoft.Network/virtualNetworks`,
    { GET: (p, _r, c) => ok({ value: c.model.listVnets(p('s'), p('rg')) }) },
    { GET: list(VNET_READ) },
  ),
  route(
    `${SUB}/Microsoft.Network/virtualNetworks`,
    { GET: (p, _r, c) => ok({ value: c.model.listVnets(p('s')) }) },
    { GET: list(VNET_READ) },
  ),
  route(
    `${RG}/Microsoft.Network/virtualNetworks/{vnet}`,
    { GET: (p, _r, c) => ok(c.model.getVnet(p('s'), p('rg'), p('vnet'))) },
    { GET: VNET_READ },
  ),
  route(
    `${RG}/Microsoft.Network/virtualNetworks/{vnet}/subnets`,
    { GET: (p, _r, c) => ok({ value: c.model.listSubnets(p('s'), p('rg'), p('vnet')) }) },
    { GET: list(SUBNET_READ) },
  ),
  route(
    `${RG}/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}`,
    { GET: (p, _r, c) => ok(c.model.getSubnet(p('s'), p('rg'), p('vnet'), p('subnet'))) },
    { GET: SUBNET_READ },
  ),
  route(
    NSG,
    { GET: (p, _r, c) => ok(c.model.getNsg(p('s'), p('rg'), p('nsg'))), PUT: putNsg },
    { GET: NSG_READ, PUT: { action: 'Microsoft.Network/networkSecurityGroups/write' } },
  ),
  route(
    `${RG}/Microsoft.Network/networkSecurityGroups`,
    { GET: (p, _r, c) => ok({ value: c.model.listNsgs(p('s'), p('rg')) }) },
    { GET: list(NSG_READ) },
  ),
  route(
    `${SUB}/Microsoft.Network/networkSecurityGroups`,
    { GET: (p, _r, c) => ok({ value: c.model.listNsgs(p('s')) }) },
    { GET: list(NSG_READ) },
  ),
  route(
    `${NSG}/securityRules`,
    { GET: (p, _r, c) => ok({ value: c.model.listRules(p('s'), p('rg'), p('nsg')) }) },
    { GET: list(RULE_READ) },
  ),
  route(
    `${NSG}/securityRules/{rule}`,
    { GET: (p, _r, c) => ok(c.model.getRule(ruleAddress(p))), PUT: putRule, DELETE: deleteRule },
    {
      GET: RULE_READ,
      PUT: { action: 'Microsoft.Network/networkSecurityGroups/securityRules/write' },
      DELETE: { action: 'Microsoft.Network/networkSecurityGroups/securityRules/delete' },
    },
  ),
  route(
    `${RG}/Microsoft.Web/sites/{site}/config/authsettingsV2`,
    { GET: (p, _r, c) => c.sites.getAuthSettingsV2(p('s'), p('rg'), p('site')) },
    // GET of a site's config (WebApps_GetAuthSettingsV2WithoutSecrets); secrets need the list actions.
    { GET: { action: 'Microsoft.Web/sites/config/Read' } },
  ),
  route(
    `${SUB}/Microsoft.Network/locations/{location}/operations/{operation}`,
    { GET: operationStatus },
    { GET: { action: 'Microsoft.Network/locations/operations/read' } },
  ),
  route(
    `${SUB}/Microsoft.Network/locations/{location}/operationResults/{operation}`,
    { GET: operationResult },
    { GET: { action: 'Microsoft.Network/locations/operationResults/read' } },
  ),
];

/**
 * `<scope>/providers/Microsoft.Authorization/permissions`: the caller's own permissions at a scope (Permissions_List*
 * in specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-PermissionsCalls.json):
 * one entry per role assignment that applies there, with its role's Actions and NotActions.
 */
const PERMISSIONS = /^(.*?)\/providers\/Microsoft\.Authorization\/permissions$/i;

/** `<scope>/providers/Microsoft.Authorization/locks[/<name>]`, at any scope (the spec's `/{scope}/...` paths). */
const LOCKS = /^(.*?)\/providers\/Microsoft\.Authorization\/locks(?:\/([^/]+))?$/i;

/**
 * Serves one ARM request (already authenticated).
 * @throws ArmError for every ARM-level failure; the caller turns it into the response.
 */
export function serveArmRequest(request: ArmRequest, context: RouteContext): ArmResponse {
  // A trailing slash names the same resource; an empty segment (an SDK's empty parentResourcePath) is dropped.
  const segments = request.path
    .split('/')
    .filter((segment) => segment !== '')
    .map(decodeSegment);
  const path = `/${segments.join('/')}`;
  const lockRoute = LOCKS.exec(path);
  if (lockRoute) return serveLocks(request.method, lockRoute[1] || '/', lockRoute[2], request, context);
  const permissionsRoute = PERMISSIONS.exec(path);
  if (permissionsRoute) {
    if (request.method !== 'GET') throw armErrors.methodNotAllowed(request.method);
    const scope = permissionsRoute[1] || '/';
    context.rbac.authorize(context.principal, 'Microsoft.Authorization/permissions/read', scope);
    return ok({ value: context.rbac.permissionsAt(context.principal, scope) });
  }
  for (const candidate of routes) {
    const params = match(candidate.segments, segments);
    if (!params) continue;
    const method = request.method as HttpMethod;
    const handler = candidate.handlers[method];
    if (!handler) throw armErrors.methodNotAllowed(request.method);
    const permission = candidate.permissions[method];
    // RBAC, then locks, both before the resource provider sees the request (and so before "not found").
    const filterBy = permission ? authorize(permission, path, context) : undefined;
    if (method === 'PUT' || method === 'DELETE')
      context.locks.assertAllowed(path, method === 'PUT' ? 'write' : 'delete');
    const response = handler(params, request, context);
    return filterBy ? filterCollection(response, filterBy, context) : response;
  }
  throw armErrors.unsupportedRoute(request.method, request.path);
}

/**
 * Checks the caller's role assignments. Returns the action to filter a collection's items by, when the caller may
 * not read the collection as a whole but holds some assignment below it. The scope ARM names for a collection is
 * its parent path (e.g. `.../resourceGroups/rg/providers/Microsoft.Network` for a list of NSGs).
 */
function authorize(permission: Permission, path: string, context: RouteContext): string | undefined {
  const scope = permission.collection ? path.slice(0, path.lastIndexOf('/')) : path;
  if (context.rbac.allows(context.principal, permission.action, scope)) return undefined;
  // Assignments below a collection live under its subscription or resource group, not under its provider path.
  const container = scope.replace(/\/providers\/.*$/i, '');
  if (permission.collection && context.rbac.hasAnyBelow(context.principal, container))
    return permission.action;
  context.rbac.authorize(context.principal, permission.action, scope);
  return undefined;
}

function filterCollection(response: ArmResponse, action: string, context: RouteContext): ArmResponse {
  const body = response.body as { value?: Array<{ id?: string }> } | undefined;
  if (!body?.value) return response;
  const value = body.value.filter(
    (item) => item.id && context.rbac.allows(context.principal, action, item.id),
  );
  return { ...response, body: { ...body, value } };
}

/** Microsoft.Authorization/locks at any scope: GET one, GET the list (with `$filter=atScope()`), PUT, DELETE. */
function serveLocks(
  method: string,
  scope: string,
  name: string | undefined,
  request: ArmRequest,
  context: RouteContext,
): ArmResponse {
  const action =
    method === 'GET'
      ? 'Microsoft.Authorization/locks/read'
      : method === 'PUT'
        ? 'Microsoft.Authorization/locks/write'
        : method === 'DELETE'
          ? 'Microsoft.Authorization/locks/delete'
          : undefined;
  if (!action || (name === undefined && method !== 'GET')) throw armErrors.methodNotAllowed(method);
  context.rbac.authorize(
    context.principal,
    action,
    name === undefined ? scope : `${scope}/providers/Microsoft.Authorization/locks/${name}`,
  );
  if (name === undefined) {
    const filter = request.query?.get('$filter')?.replace(/\s/g, '').toLowerCase();
    return ok({ value: context.locks.list(scope, filter === 'atscope()') });
  }
  if (method === 'GET') {
    const lock = context.locks.get(scope, name);
    if (!lock) throw new ArmError(404, 'LockNotFound', `The lock '${name}' could not be found.`);
    return ok(lock);
  }
  if (method === 'PUT') {
    const { lock, created } = context.locks.put(scope, name, parseJsonBody(request.body));
    return { status: created ? 201 : 200, body: lock };
  }
  return { status: context.locks.delete(scope, name) ? 200 : 204 };
}

function putNsg(params: Params, request: ArmRequest, context: RouteContext): ArmResponse {
  const { nsg, operation } = context.model.putNsg(
    params('s'),
    params('rg'),
    params('nsg'),
    parseJsonBody(request.body),
    request.headers?.['if-match'],
    request.apiVersion,
  );
  return {
    status: 200,
    body: nsg,
    headers: {
      'Azure-AsyncOperation': statusUrl(operation, context),
      'Retry-After': String(context.operationRetryAfterInSeconds),
    },
  };
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

function route(
  pattern: string,
  handlers: Partial<Record<HttpMethod, Handler>>,
  permissions: Partial<Record<HttpMethod, Permission>>,
): Route {
  return { segments: pattern.split('/'), handlers, permissions };
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
