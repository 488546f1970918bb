/**
 * Test data with sensible defaults: a test names only what it is about (`aPolicy({ enforce: true })`) and gets the
 * rest as every other test does. VMs and NSGs get names no other call gets, so state kept by one test (an NSG
 * registry, an in-process cache) never meets another's.
 */
import type {
  AccessRequest,
  GrantRule,
  Policy,
  Principal,
  SecurityRuleView,
  VmNetworkPath,
} from '../../shared/domain/types';
import { person } from './principals';

export const SUBSCRIPTION = '/subscriptions/00000000-0000-0000-0000-000000000001';

/** The address callers call from unless a test says otherwise; `my-ip` in a policy means it. */
export const CALLER_ADDRESS = '203.0.113.7';

let sequence = 0;
const next = () => ++sequence;

export interface VmOptions {
  name?: string;
  resourceGroup?: string;
  subscription?: string;
  /** Private addresses; one unique IPv4 address when left out. */
  addresses?: string[];
  /** NSG names in front of the VM (subnet first, then NIC), each filtering every address. One when left out. */
  nsgs?: string[];
}

/** A VM and the network path in front of it, as ARM describes it. */
export function aVm(o: VmOptions = {}): VmNetworkPath {
  const n = next();
  const sub = o.subscription ?? SUBSCRIPTION;
  const rg = o.resourceGroup ?? `rg-${n}`;
  const name = o.name ?? `vm-${n}`;
  const addresses = o.addresses ?? [`10.${Math.floor(n / 250) % 250}.${n % 250}.4`];
  const nsgIds = (o.nsgs ?? [`nsg-${n}`]).map((nsg) => nsgId(nsg, rg, sub));
  return {
    vmId: `${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachines/${name}`,
    vmName: name,
    osType: 'Linux',
    privateAddresses: addresses,
    nsgIds,
    guards: nsgIds.map((id) => ({ nsgId: id, addresses: [...addresses] })),
    unguardedAddresses: [],
  };
}

/** The lower-cased id of an NSG, as a network path names it. */
export function nsgId(name: string, resourceGroup: string, subscription = SUBSCRIPTION): string {
  return `${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/networkSecurityGroups/${name}`.toLowerCase();
}

/** The scope of a VM's resource group (lower-cased, as a policy holds it). */
export function resourceGroupOf(vm: Pick<VmNetworkPath, 'vmId'>): string {
  return vm.vmId.replace(/\/providers\/.*$/i, '').toLowerCase();
}

export type PolicyOptions = Partial<Omit<Policy, 'approval'>> & { approval?: Partial<Policy['approval']> };

/**
 * A policy as stored: port 22 for up to an hour from the caller's own address, anyone may ask, approved
 * automatically, no enforcement. `scope` is lower-cased like a stored one.
 */
export function aPolicy(o: PolicyOptions = {}): Policy {
  const { approval, ...rest } = o;
  const policy: Policy = {
    scope: SUBSCRIPTION.toLowerCase(),
    ports: [{ port: 22, protocol: 'Tcp', maxDurationInSeconds: 3600 }],
    allowedSourcePrefixes: ['my-ip'],
    requesters: ['*'],
    approval: { mode: 'auto', approvers: [], required: 1, timeoutInSeconds: 3600, ...approval },
    justification: { required: false },
    enforce: false,
    ...rest,
  };
  return { ...policy, scope: policy.scope.toLowerCase() };
}

/** Manual approval by these approvers (`user:…`, `group:…`), `required` of them. */
export function manualApproval(
  approvers: string[],
  required = 1,
  timeoutInSeconds = 3600,
): PolicyOptions['approval'] {
  return { mode: 'manual', approvers, required, timeoutInSeconds };
}

/** The body of `POST /api/requests`: port 22 for an hour on the VM. */
export function aRequestBody(
  vm: Pick<VmNetworkPath, 'vmId'> | string,
  o: Record<string, unknown> = {},
): Record<string, unknown> {
  return { vm: typeof vm === 'string' ? vm : vm.vmId, ports: [22], duration: 'PT1H', ...o };
}

/** A person signed in, in the sandbox's `dev` form: their name is their key. */
export function aPrincipal(
  name = 'alice@example.com',
  o: { roles?: string[]; groups?: string[] } = {},
): Principal {
  return person(name, o.groups ?? [], o.roles ?? []);
}

export const anAdmin = (name = 'admin@example.com') => aPrincipal(name, { roles: ['Jit.Admin'] });
export const anAuditor = (name = 'auditor@example.com') => aPrincipal(name, { roles: ['Jit.Auditor'] });

/** A request row as stored: active, port 22 for ten minutes, from the test address. */
export function anAccessRequest(o: Partial<AccessRequest> = {}): AccessRequest {
  return {
    id: '01JQ0000000000000000000001',
    requester: 'alice@example.com',
    vmId: `${SUBSCRIPTION}/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/VM1`,
    ports: [22],
    protocol: 'Tcp',
    sourcePrefix: `${CALLER_ADDRESS}/32`,
    durationInSeconds: 600,
    status: 'submitted',
    policyScope: `${SUBSCRIPTION}/resourcegroups/rg`.toLowerCase(),
    approvalMode: 'auto',
    createdAt: '2026-03-14T10:00:00.000Z',
    updatedAt: '2026-03-14T10:00:00.000Z',
    ...o,
  };
}

/** A grant's rule row in one NSG: applied at priority 1000. */
export function aGrant(o: Partial<GrantRule> & Pick<GrantRule, 'requestId' | 'nsgId'>): GrantRule {
  return {
    ruleName: `jit-${o.requestId.toLowerCase()}`,
    priority: 1000,
    destinationAddresses: ['10.0.0.4'],
    state: 'applied',
    expiresAt: '2026-03-14T10:10:00.000Z',
    updatedAt: '2026-03-14T10:00:00.000Z',
    ...o,
  };
}

/** Someone else's security rule as ARM lists it: inbound allow of TCP 22 from anywhere at priority 300, in place. */
export function aSecurityRule(o: Partial<SecurityRuleView> = {}): SecurityRuleView {
  return {
    name: 'allow-ssh',
    priority: 300,
    direction: 'Inbound',
    access: 'Allow',
    protocol: 'Tcp',
    sourceAddressPrefixes: ['*'],
    destinationAddressPrefixes: ['*'],
    destinationPortRanges: ['22'],
    provisioningState: 'Succeeded',
    ...o,
  };
}
