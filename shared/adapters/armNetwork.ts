import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ManagementLockClient } from '@azure/arm-locks';
import { NetworkManagementClient } from '@azure/arm-network';
import type { NetworkInterface, SecurityRule } from '@azure/arm-network';
import type { VirtualMachine } from '@azure/arm-compute';
import type { TokenCredential } from '@azure/core-auth';
import { setTimeout as sleep } from 'node:timers/promises';
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
  /** How often to poll a running rule operation. Default {@link POLL_INTERVAL_IN_MS}. */
  pollIntervalInMs?: number;
  /** Retries the SDK itself makes on 429/5xx before an error reaches the use case. */
  maxRetries?: number;
  /** First delay of those retries (5xx; a 429 waits its Retry-After). Default 500 ms. */
  retryDelayInMs?: number;
}

/**
 * How often a running rule operation is polled. Network RP answers `Retry-After: 10` while an operation runs, and
 * @azure/core-lro's `pollUntilDone` waits each poll's `Retry-After` in preference to `updateIntervalInMs` (its
 * poller sets the delay from every non-terminal poll response), so an operation of 3 s was seen done after 10 s:
 * the user waited three times as long as ARM worked, and every other writer of that NSG queued behind the poll.
 * The adapter therefore drives the SDK's poller itself. One poll is one ARM read: at one a second, a running
 * operation uses 1 of the 25 reads a second ARM refills per subscription and principal (docs/performance.md), and
 * ARM runs one operation per NSG at a time.
 */
const POLL_INTERVAL_IN_MS = 1000;
/**
 * Below this many reads left in the subscription's bucket (250 when full), polls go back to the operation's own
 * `Retry-After`: fast polling must never be what throttles the subscription.
 */
const LOW_READS_LEFT = 50;

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
    return this.cached(this.network, subscriptionId, () => {
      const c = new NetworkManagementClient(this.credential, subscriptionId, this.clientOptions());
      // Closer to the wire than the retry policy, so it sees a busy answer before the SDK decides to wait on it.
      c.pipeline.addPolicy(busyAnswerPolicy, { afterPhase: 'Retry' });
      return c;
    });
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
      nics.push(nicDescription(nic, nicRef.id));
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
    return buildNetworkPath(
      {
        // ARM's own spelling of the id: the policy is chosen from it, not from what the caller typed.
        id: vm.id ?? vmId,
        name: vm.name ?? vmRef.name,
        osType: osTypeOf(vm),
        nics,
      },
      (subnetId) => subnetNsgs.get(subnetId.toLowerCase()),
    );
  }

  async resolvePathsInScope(scope: string): Promise<{ paths: VmNetworkPath[]; armCalls: number }> {
    const { subscriptionId, resourceGroup } = parseScope(scope);
    let armCalls = 0;
    // Every page is one ARM read.
    const all = async <T>(what: string, pages: AsyncIterableIterator<T[]>): Promise<T[]> => {
      const out: T[] = [];
      try {
        for await (const page of pages) {
          armCalls++;
          out.push(...page);
        }
      } catch (err) {
        throw classify(err, `listing ${what} in ${scope}`);
      }
      return out;
    };
    const compute = this.computeClient(subscriptionId).virtualMachines;
    const network = this.networkClient(subscriptionId);
    const vms = await all('VMs', (resourceGroup ? compute.list(resourceGroup) : compute.listAll()).byPage());
    const nics = await all(
      'NICs',
      (resourceGroup
        ? network.networkInterfaces.list(resourceGroup)
        : network.networkInterfaces.listAll()
      ).byPage(),
    );
    const vnets = await all(
      'virtual networks',
      (resourceGroup
        ? network.virtualNetworks.list(resourceGroup)
        : network.virtualNetworks.listAll()
      ).byPage(),
    );
    const nicById = new Map(nics.filter((n) => n.id).map((n) => [n.id!.toLowerCase(), n]));
    const subnetNsgs = new Map<string, string | undefined>();
    for (const vnet of vnets)
      for (const subnet of vnet.subnets ?? [])
        if (subnet.id) subnetNsgs.set(subnet.id.toLowerCase(), subnet.networkSecurityGroup?.id);
    const paths: VmNetworkPath[] = [];
    for (const vm of vms) {
      if (!vm.id) continue;
      const refs = vm.networkProfile?.networkInterfaces ?? [];
      const nicsOfVm = refs.map((r) => (r.id ? nicById.get(r.id.toLowerCase()) : undefined));
      // A NIC or subnet the listings did not show (in another resource group, or created meanwhile): left out.
      if (nicsOfVm.some((n) => !n)) continue;
      const described = nicsOfVm.map((nic) => nicDescription(nic!, nic!.id!));
      const subnets = described.flatMap((n) => n.ipConfigurations.map((c) => c.subnetId?.toLowerCase()));
      if (subnets.some((id) => id !== undefined && !subnetNsgs.has(id))) continue;
      paths.push(
        buildNetworkPath(
          { id: vm.id, name: vm.name ?? vm.id, osType: osTypeOf(vm), nics: described },
          (subnetId) => subnetNsgs.get(subnetId.toLowerCase()),
        ),
      );
    }
    return { paths, armCalls };
  }

  async *listVms(scope: string): AsyncIterable<string> {
    if (!SCOPE.test(scope.trim())) {
      // A VM scope is the VM itself; parseVmId refuses anything else. resolvePath tells whether it exists.
      parseVmId(scope);
      yield scope;
      return;
    }
    const { subscriptionId, resourceGroup } = parseScope(scope);
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
    await call(`writing rule ${rule.name} to ${n.name}`, async () => {
      const watch = new OperationWatch(this.options.pollIntervalInMs ?? POLL_INTERVAL_IN_MS);
      // The PUT and a first poll; the rule counts as written once the operation has ended Succeeded.
      const poller = await this.networkClient(n.subscriptionId).securityRules.beginCreateOrUpdate(
        n.resourceGroup,
        n.name,
        rule.name,
        body,
        { onResponse: watch.onResponse },
      );
      await watch.untilDone(poller);
    });
  }

  async deleteRule(nsgId: string, ruleName: string): Promise<void> {
    const n = parseResourceId(nsgId);
    try {
      const watch = new OperationWatch(this.options.pollIntervalInMs ?? POLL_INTERVAL_IN_MS);
      const poller = await this.networkClient(n.subscriptionId).securityRules.beginDelete(
        n.resourceGroup,
        n.name,
        ruleName,
        { onResponse: watch.onResponse },
      );
      await watch.untilDone(poller);
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
    await call(`turning on flushConnection on ${n.name}`, async () => {
      // Watched like a rule's operation: a grant waits on it, and Network RP's Retry-After would add 10 s.
      const watch = new OperationWatch(this.options.pollIntervalInMs ?? POLL_INTERVAL_IN_MS);
      const poller = await groups.beginCreateOrUpdate(
        n.resourceGroup,
        n.name,
        { location: nsg.location, tags: nsg.tags, securityRules: nsg.securityRules, flushConnection: true },
        {
          onResponse: watch.onResponse,
          requestOptions: { customHeaders: { 'If-Match': nsg.etag ?? '*' } },
        },
      );
      await watch.untilDone(poller);
    });
    return true;
  }
}

const SCOPE = /^\/subscriptions\/([^/]+)(?:\/resourcegroups\/([^/]+))?$/i;

/** A subscription or resource group id; throws for anything else. */
function parseScope(scope: string): { subscriptionId: string; resourceGroup?: string } {
  const m = SCOPE.exec(scope.trim());
  if (!m?.[1]) throw new GrantNotApplicable(`${scope} is not a subscription or resource group`);
  return { subscriptionId: m[1], ...(m[2] ? { resourceGroup: m[2] } : {}) };
}

function nicDescription(nic: NetworkInterface, id: string): NicDescription {
  return {
    id: nic.id ?? id,
    nsgId: nic.networkSecurityGroup?.id,
    ipConfigurations: (nic.ipConfigurations ?? []).map((ipc) => ({
      privateAddress: ipc.privateIPAddress,
      subnetId: ipc.subnet?.id,
    })),
  };
}

function osTypeOf(vm: VirtualMachine): 'Linux' | 'Windows' | undefined {
  const os = vm.storageProfile?.osDisk?.osType;
  return os === 'Linux' || os === 'Windows' ? os : undefined;
}

/**
 * Polls one started operation until it ends, at a fixed interval rather than the operation's `Retry-After` while
 * the subscription has reads to spare (see {@link POLL_INTERVAL_IN_MS}). `poll()` throws what the SDK throws for an
 * operation that ended `Failed`, and for a poll ARM refused after the SDK's own retries (the SDK then counts the
 * operation as failed too; the caller's retry looks at the rule afresh).
 */
class OperationWatch {
  private retryAfterInMs: number | undefined;
  private readsLeft: number | undefined;

  constructor(private readonly intervalInMs: number) {}

  /** Sees every response of the operation: the PUT or DELETE, then each poll. */
  readonly onResponse = (response: { headers: { get(name: string): string | undefined } }): void => {
    this.retryAfterInMs = retryAfterInMs(response.headers);
    const own = Number(response.headers.get('x-ms-ratelimit-remaining-subscription-reads'));
    const global = Number(response.headers.get('x-ms-ratelimit-remaining-subscription-global-reads'));
    const left = [own, global].filter(Number.isFinite);
    if (left.length) this.readsLeft = Math.min(...left);
  };

  async untilDone(poller: { isDone(): boolean; poll(): Promise<void> }): Promise<void> {
    while (!poller.isDone()) {
      await sleep(this.nextWait());
      await poller.poll();
    }
  }

  private nextWait(): number {
    const short = this.readsLeft !== undefined && this.readsLeft < LOW_READS_LEFT;
    return short ? Math.max(this.intervalInMs, this.retryAfterInMs ?? 0) : this.intervalInMs;
  }
}

/**
 * Network RP answers a write to an NSG that another operation holds with `429 RetryableError`
 * (`RetryableErrorDueToAnotherOperation`) and the running operation's `Retry-After` (10 s). The SDK's throttling
 * policy would sleep that out up to three times inside one call, while the operation it waits for takes seconds.
 * Dropping the header here hands the answer to the use case at once, whose back-off (from 0.5 s, doubling) retries
 * when the NSG is free. ARM's own throttling 429 (`SubscriptionRequestsThrottled`) keeps its Retry-After: a request
 * sent earlier is not processed, so the SDK waits it out as it should.
 */
const busyAnswerPolicy = {
  name: 'jitBusyAnswerNotWaitedOut',
  async sendRequest(
    request: Parameters<Parameters<NetworkManagementClient['pipeline']['addPolicy']>[0]['sendRequest']>[0],
    next: Parameters<Parameters<NetworkManagementClient['pipeline']['addPolicy']>[0]['sendRequest']>[1],
  ) {
    const response = await next(request);
    if (response.status === 429 && /RetryableErrorDueToAnotherOperation/.test(response.bodyAsText ?? ''))
      response.headers.delete('retry-after');
    return response;
  },
};

/**
 * The wait ARM asks for on a response, read as the SDK reads it: `retry-after-ms`, `x-ms-retry-after-ms`, then
 * `Retry-After` in seconds or as an HTTP date.
 */
function retryAfterInMs(headers: { get(name: string): string | undefined }): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = Number(headers.get(name));
    if (headers.get(name) !== undefined && Number.isFinite(value) && value >= 0) return value;
  }
  const raw = headers.get('retry-after');
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function view(r: SecurityRule): SecurityRuleView {
  const list = (one?: string, many?: string[]) => (many && many.length ? many : one ? [one] : []);
  return {
    name: r.name ?? '',
    // Only `Succeeded` is a rule in place; ARM always sends it, so a missing one is nothing to trust.
    provisioningState: r.provisioningState ?? 'Unknown',
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
    // What is left of ARM's wait after the SDK's own retries: the caller waits exactly that, no more.
    const wait = err.response?.headers ? retryAfterInMs(err.response.headers) : undefined;
    return new TransientFailure(message, wait !== undefined && wait > 0 ? wait : undefined);
  }
  if (status === 404) return new ResourceNotFound(`not found ${what}`);
  return new GrantNotApplicable(message);
}
