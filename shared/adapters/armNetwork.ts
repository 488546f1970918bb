import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ManagementLockClient } from '@azure/arm-locks';
import { NetworkManagementClient } from '@azure/arm-network';
import type { SecurityRule } from '@azure/arm-network';
import type { TokenCredential } from '@azure/core-auth';
import {
  GrantNotApplicable,
  NetworkPermissionMissing,
  PriorityTaken,
  ResourceNotFound,
  ScopeLocked,
  TransientFailure,
} from '../domain/errors';
import { buildNetworkPath } from '../domain/networkPath';
import type { NicDescription } from '../domain/networkPath';
import type { NetworkGateway, ResourceLock } from '../domain/ports';
import { parseResourceId, parseVmId } from '../domain/resourceId';
import type { AllowRuleSpec, SecurityRuleView, VmNetworkPath } from '../domain/types';

export interface ArmNetworkGatewayOptions {
  /** ARM endpoint (public cloud, a sovereign cloud, or the local sandbox). */
  endpoint: string;
  /** Extra CA certificate (PEM) to trust, for an endpoint behind a private CA. */
  caPem?: string;
  /** How often to poll a long-running operation; ARM's Retry-After when undefined. */
  pollIntervalInMs?: number;
  /** Retries the SDK itself makes on 429/5xx before an error reaches the use case. */
  maxRetries?: number;
  /** First delay of those retries (5xx; a 429 waits its Retry-After). Default 500 ms. */
  retryDelayInMs?: number;
}

/** ARM's answers that mean "try again in a moment". */
const BUSY_CODES = new Set([
  'AnotherOperationInProgress',
  'RetryableError',
  'Conflict',
  'OperationNotAllowed',
]);
const PRIORITY_CODES = new Set([
  'SecurityRuleConflict',
  'SecurityRulesConflictingPriority',
  'SecurityRuleParameterContainsConflict',
]);

/**
 * The NetworkGateway port over @azure/arm-network and @azure/arm-compute. One client pair per subscription,
 * reused across invocations (clients hold connection pools and token caches).
 */
export class ArmNetworkGateway implements NetworkGateway {
  private readonly network = new Map<string, NetworkManagementClient>();
  private readonly compute = new Map<string, ComputeManagementClient>();
  private readonly locks = new Map<string, ManagementLockClient>();
  private readonly authorization = new Map<string, AuthorizationManagementClient>();

  constructor(
    private readonly credential: TokenCredential,
    private readonly options: ArmNetworkGatewayOptions,
  ) {}

  private clientOptions() {
    return {
      endpoint: this.options.endpoint,
      ...(this.options.caPem ? { tlsOptions: { ca: this.options.caPem } } : {}),
      retryOptions: {
        maxRetries: this.options.maxRetries ?? 3,
        retryDelayInMs: this.options.retryDelayInMs ?? 500,
        maxRetryDelayInMs: 8000,
      },
    };
  }

  /** One client of each kind per subscription, made on first use. */
  private cached<T>(cache: Map<string, T>, subscriptionId: string, make: () => T): T {
    let c = cache.get(subscriptionId);
    if (!c) {
      c = make();
      cache.set(subscriptionId, c);
    }
    return c;
  }

  private networkClient(subscriptionId: string): NetworkManagementClient {
    return this.cached(
      this.network,
      subscriptionId,
      () => new NetworkManagementClient(this.credential, subscriptionId, this.clientOptions()),
    );
  }

  private computeClient(subscriptionId: string): ComputeManagementClient {
    return this.cached(
      this.compute,
      subscriptionId,
      () => new ComputeManagementClient(this.credential, subscriptionId, this.clientOptions()),
    );
  }

  private lockClient(subscriptionId: string): ManagementLockClient {
    return this.cached(
      this.locks,
      subscriptionId,
      () => new ManagementLockClient(this.credential, subscriptionId, this.clientOptions()),
    );
  }

  private authorizationClient(subscriptionId: string): AuthorizationManagementClient {
    return this.cached(
      this.authorization,
      subscriptionId,
      () => new AuthorizationManagementClient(this.credential, subscriptionId, this.clientOptions()),
    );
  }

  async listPermissions(resourceId: string): Promise<Array<{ actions: string[]; notActions: string[] }>> {
    const r = parseResourceId(resourceId);
    return call(`reading the deployment's permissions on ${r.name}`, async () => {
      const out: Array<{ actions: string[]; notActions: string[] }> = [];
      // A top-level resource (an NSG): no parent path.
      const pages = this.authorizationClient(r.subscriptionId).permissions.listForResource(
        r.resourceGroup,
        r.provider,
        '',
        r.type,
        r.name,
      );
      for await (const p of pages) out.push({ actions: p.actions ?? [], notActions: p.notActions ?? [] });
      return out;
    });
  }

  async getVmId(vmId: string): Promise<string> {
    const vmRef = parseVmId(vmId);
    const vm = await call(`reading VM ${vmRef.name}`, () =>
      this.computeClient(vmRef.subscriptionId).virtualMachines.get(vmRef.resourceGroup, vmRef.name),
    );
    return vm.id ?? vmId;
  }

  async resolvePath(vmId: string): Promise<VmNetworkPath> {
    const vmRef = parseVmId(vmId);
    const vm = await call(`reading VM ${vmRef.name}`, () =>
      this.computeClient(vmRef.subscriptionId).virtualMachines.get(vmRef.resourceGroup, vmRef.name),
    );
    const nics: NicDescription[] = [];
    const subnetNsgs = new Map<string, string | undefined>();
    // Every NIC and every IP configuration: a secondary NIC or a second subnet is as much a way in.
    for (const nicRef of vm.networkProfile?.networkInterfaces ?? []) {
      if (!nicRef.id) continue;
      const n = parseResourceId(nicRef.id);
      const nic = await call(`reading NIC ${n.name}`, () =>
        this.networkClient(n.subscriptionId).networkInterfaces.get(n.resourceGroup, n.name),
      );
      nics.push({
        id: nic.id ?? nicRef.id,
        nsgId: nic.networkSecurityGroup?.id,
        ipConfigurations: (nic.ipConfigurations ?? []).map((ipc) => ({
          privateAddress: ipc.privateIPAddress,
          subnetId: ipc.subnet?.id,
        })),
      });
      for (const ipc of nic.ipConfigurations ?? []) {
        const subnetId = ipc.subnet?.id;
        if (!subnetId || subnetNsgs.has(subnetId.toLowerCase())) continue;
        const s = parseResourceId(subnetId);
        const subnet = await call(`reading subnet ${s.children[1] ?? ''}`, () =>
          this.networkClient(s.subscriptionId).subnets.get(s.resourceGroup, s.name, s.children[1] ?? ''),
        );
        subnetNsgs.set(subnetId.toLowerCase(), subnet.networkSecurityGroup?.id);
      }
    }
    const os = vm.storageProfile?.osDisk?.osType;
    return buildNetworkPath(
      {
        // ARM's own spelling of the id: the policy is chosen from it, not from what the caller typed.
        id: vm.id ?? vmId,
        name: vm.name ?? vmRef.name,
        osType: os === 'Linux' || os === 'Windows' ? os : undefined,
        nics,
      },
      (subnetId) => subnetNsgs.get(subnetId.toLowerCase()),
    );
  }

  async *listVms(scope: string): AsyncIterable<string> {
    const m = /^\/subscriptions\/([^/]+)(?:\/resourcegroups\/([^/]+))?$/i.exec(scope.trim());
    if (!m) {
      // A VM scope is the VM itself; parseVmId refuses anything else. resolvePath tells whether it exists.
      parseVmId(scope);
      yield scope;
      return;
    }
    const [, subscriptionId = '', resourceGroup] = m;
    const vms = this.computeClient(subscriptionId).virtualMachines;
    const pages = resourceGroup ? vms.list(resourceGroup) : vms.listAll();
    try {
      for await (const vm of pages) if (vm.id) yield vm.id;
    } catch (err) {
      throw classify(err, `listing VMs in ${scope}`);
    }
  }

  async listRules(nsgId: string): Promise<SecurityRuleView[]> {
    const n = parseResourceId(nsgId);
    return call(`listing rules of ${n.name}`, async () => {
      const out: SecurityRuleView[] = [];
      for await (const r of this.networkClient(n.subscriptionId).securityRules.list(n.resourceGroup, n.name))
        out.push(view(r));
      return out;
    });
  }

  async getRule(nsgId: string, ruleName: string): Promise<SecurityRuleView | undefined> {
    const n = parseResourceId(nsgId);
    try {
      return view(
        await this.networkClient(n.subscriptionId).securityRules.get(n.resourceGroup, n.name, ruleName),
      );
    } catch (err) {
      if (isRestError(err) && err.statusCode === 404) return undefined;
      throw classify(err, `reading rule ${ruleName} of ${n.name}`);
    }
  }

  async putRule(nsgId: string, rule: AllowRuleSpec): Promise<void> {
    const n = parseResourceId(nsgId);
    const body: SecurityRule = {
      protocol: rule.protocol,
      access: rule.access ?? 'Allow',
      direction: 'Inbound',
      priority: rule.priority,
      sourceAddressPrefix: rule.sourceAddressPrefix,
      sourcePortRange: '*',
      destinationAddressPrefixes: rule.destinationAddressPrefixes,
      destinationPortRanges: rule.destinationPortRanges,
      // Azure refuses descriptions longer than 140 characters (a long UPN would otherwise fail the grant).
      description: rule.description.length > 140 ? `${rule.description.slice(0, 139)}…` : rule.description,
    };
    await call(`writing rule ${rule.name} to ${n.name}`, () =>
      this.networkClient(n.subscriptionId).securityRules.beginCreateOrUpdateAndWait(
        n.resourceGroup,
        n.name,
        rule.name,
        body,
        {
          updateIntervalInMs: this.options.pollIntervalInMs,
        },
      ),
    );
  }

  async deleteRule(nsgId: string, ruleName: string): Promise<void> {
    const n = parseResourceId(nsgId);
    try {
      await this.networkClient(n.subscriptionId).securityRules.beginDeleteAndWait(
        n.resourceGroup,
        n.name,
        ruleName,
        {
          updateIntervalInMs: this.options.pollIntervalInMs,
        },
      );
    } catch (err) {
      // A rule (or NSG) that is already gone is what we wanted.
      if (isRestError(err) && err.statusCode === 404) return;
      throw classify(err, `deleting rule ${ruleName} from ${n.name}`);
    }
  }

  async listLocks(nsgId: string): Promise<ResourceLock[]> {
    const n = parseResourceId(nsgId);
    return call(`reading the locks on ${n.name}`, async () => {
      const out: ResourceLock[] = [];
      // `atScope()`: the locks at the NSG and above it (its resource group, its subscription), i.e. those that apply
      // to its rules, in one call (locks.json 2020-05-01, ManagementLocks_ListByScope).
      const pages = this.lockClient(n.subscriptionId).managementLocks.listByScope(nsgId.replace(/^\//, ''), {
        filter: 'atScope()',
      });
      for await (const lock of pages) {
        if (lock.level !== 'CanNotDelete' && lock.level !== 'ReadOnly') continue;
        const id = lock.id ?? '';
        out.push({
          name: lock.name ?? '',
          level: lock.level,
          scope: id.replace(/\/providers\/Microsoft\.Authorization\/locks\/[^/]+$/i, ''),
        });
      }
      return out;
    });
  }

  async enableFlushConnection(nsgId: string): Promise<boolean> {
    const n = parseResourceId(nsgId);
    const groups = this.networkClient(n.subscriptionId).networkSecurityGroups;
    const nsg = await call(`reading NSG ${n.name}`, () => groups.get(n.resourceGroup, n.name));
    if (nsg.flushConnection) return false;
    // A PUT of an NSG replaces all its rules with those sent. Send back exactly what was read, conditional on the
    // etag read: a rule written in between makes ARM answer 412, and the caller tries again with a fresh read.
    await call(`turning on flushConnection on ${n.name}`, () =>
      groups.beginCreateOrUpdateAndWait(
        n.resourceGroup,
        n.name,
        { location: nsg.location, tags: nsg.tags, securityRules: nsg.securityRules, flushConnection: true },
        {
          updateIntervalInMs: this.options.pollIntervalInMs,
          requestOptions: { customHeaders: { 'If-Match': nsg.etag ?? '*' } },
        },
      ),
    );
    return true;
  }
}

function view(r: SecurityRule): SecurityRuleView {
  const list = (one?: string, many?: string[]) => (many && many.length ? many : one ? [one] : []);
  return {
    name: r.name ?? '',
    priority: r.priority ?? 0,
    direction: r.direction === 'Outbound' ? 'Outbound' : 'Inbound',
    access: r.access === 'Deny' ? 'Deny' : 'Allow',
    protocol: r.protocol ?? '*',
    sourceAddressPrefixes: list(r.sourceAddressPrefix, r.sourceAddressPrefixes),
    destinationAddressPrefixes: list(r.destinationAddressPrefix, r.destinationAddressPrefixes),
    destinationPortRanges: list(r.destinationPortRange, r.destinationPortRanges),
    description: r.description,
  };
}

interface RestErrorLike {
  name: 'RestError';
  statusCode?: number;
  code?: string;
  message: string;
  response?: { headers?: { get(name: string): string | undefined } };
}

function isRestError(err: unknown): err is RestErrorLike {
  return (err as { name?: string })?.name === 'RestError';
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classify(err, what);
  }
}

/** Turns an SDK failure into what the use case can act on: re-plan, retry, or give up. */
function classify(err: unknown, what: string): Error {
  if (!isRestError(err)) {
    // A long-running operation that ended `Failed` surfaces as a plain Error; ARM may well succeed next time.
    return new TransientFailure(`ARM failed ${what}: ${(err as Error)?.message ?? String(err)}`);
  }
  const status = err.statusCode ?? 0;
  const code = err.code ?? '';
  const message = `ARM answered ${status} ${code} ${what}: ${err.message}`;
  if (status === 403 && /AuthorizationFailed/i.test(code)) {
    // "... does not have authorization to perform action '<action>' over scope '<scope>' or the scope is invalid."
    const m = /perform action '([^']+)' over scope '([^']+)'/.exec(err.message);
    const permission = m?.[1] ?? 'unknown';
    const scope = m?.[2] ?? 'unknown';
    return new NetworkPermissionMissing(
      permission,
      scope,
      `the deployment's identity lacks ${permission} on ${scope} (ARM answered 403 ${what}); its role must cover that scope (see docs/deploy.md)`,
    );
  }
  if (status === 409 && code === 'ScopeLocked') {
    // "The scope '<id>' cannot perform <write|delete> operation because following scope(s) are locked: '<a>', '<b>'."
    const operation = /perform write operation/i.test(err.message) ? 'write' : 'delete';
    const locked = /are locked: (.*?)\. Please/i.exec(err.message)?.[1] ?? '';
    const lockedScopes = [...locked.matchAll(/'([^']+)'/g)].map((x) => x[1] ?? '');
    return new ScopeLocked(operation, lockedScopes, message);
  }
  if (PRIORITY_CODES.has(code) || /same priority/i.test(err.message)) return new PriorityTaken(message);
  // 412: an NSG written since we read its etag (enableFlushConnection); read again and retry.
  if (BUSY_CODES.has(code) || [408, 412, 429].includes(status) || status >= 500 || status === 0) {
    const retryAfter = Number(err.response?.headers?.get('retry-after'));
    return new TransientFailure(
      message,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    );
  }
  if (status === 404) return new ResourceNotFound(`not found ${what}`);
  return new GrantNotApplicable(message);
}
