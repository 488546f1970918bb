/**
 * A benchmark estate in the ARM emulator: VMs spread over subnets, each subnet behind its own NSG and (by
 * default) each VM's NIC behind its own, as a real landing zone often is — so a grant opens two NSGs, and
 * grants on VMs of one subnet meet on the subnet's NSG. Plus the policy that lets anyone ask for SSH on them.
 */
import { DEMO, JIT_ROLE_ACTIONS } from '../../dev/arm/emulator';
import type { ArmEmulator } from '../../dev/arm/emulator';
import { ids } from '../../dev/arm/resource-ids';
import type { Policy } from '../../shared/domain/types';

export interface BenchVm {
  id: string;
  name: string;
  /** NSGs in the VM's path, lower-cased as the grant rows record them. */
  nsgIds: string[];
}

export interface EstateOptions {
  resourceGroup: string;
  subnets: number;
  vmsPerSubnet: number;
  /** Give every VM's NIC its own NSG (two NSGs per path). Default true. */
  nicNsg?: boolean;
}

/** The source prefix every bench request asks from; inside the policy's allowed ranges. */
export const BENCH_SOURCE = '203.0.113.7/32';

export function addEstate(arm: ArmEmulator, o: EstateOptions): BenchVm[] {
  const s = DEMO.subscriptionId;
  const vms: BenchVm[] = [];
  for (let n = 0; n < o.subnets; n++) {
    const subnetNsg = `${o.resourceGroup}-snet${n}-nsg`;
    for (let v = 0; v < o.vmsPerSubnet; v++) {
      const name = `${o.resourceGroup}-vm-${n}-${v}`;
      const nicNsg = o.nicNsg === false ? undefined : `${name}-nic-nsg`;
      arm.addVm({
        subscriptionId: s,
        resourceGroup: o.resourceGroup,
        name,
        nics: [
          {
            name: `${name}-nic`,
            ...(nicNsg ? { nsg: nicNsg } : {}),
            ipConfigurations: [
              {
                privateIpAddress: `10.${100 + Math.floor(n / 250)}.${n % 250}.${4 + v}`,
                subnet: {
                  vnet: `${o.resourceGroup}-vnet`,
                  name: `snet${n}`,
                  vnetAddressPrefix: `10.${100 + Math.floor(n / 250)}.0.0/16`,
                  addressPrefix: `10.${100 + Math.floor(n / 250)}.${n % 250}.0/24`,
                  nsg: subnetNsg,
                },
              },
            ],
          },
        ],
      });
      const nsgIds = [ids.nsg(s, o.resourceGroup, subnetNsg)];
      if (nicNsg) nsgIds.push(ids.nsg(s, o.resourceGroup, nicNsg));
      vms.push({ id: ids.vm(s, o.resourceGroup, name), name, nsgIds: nsgIds.map((id) => id.toLowerCase()) });
    }
  }
  return vms;
}

/** SSH (and RDP) on anything in the resource group, for anyone, auto-approved or by approvers. */
export function estatePolicy(resourceGroup: string, mode: 'auto' | 'manual' = 'auto'): Policy {
  return {
    scope: `/subscriptions/${DEMO.subscriptionId}/resourcegroups/${resourceGroup}`.toLowerCase(),
    ports: [
      { port: 22, protocol: 'Tcp', maxDurationInSeconds: 3 * 3600 },
      { port: 3389, protocol: 'Tcp', maxDurationInSeconds: 3600 },
    ],
    allowedSourcePrefixes: ['203.0.113.0/24'],
    requesters: ['*'],
    approval:
      mode === 'auto'
        ? { mode: 'auto', approvers: [], required: 0, timeoutInSeconds: 1800 }
        : { mode: 'manual', approvers: ['approver@example.com'], required: 1, timeoutInSeconds: 1800 },
    justification: { required: false },
    enforce: false,
  };
}

export interface LargeEstateOptions {
  subscriptions: number;
  vmsPerSubscription: number;
  /** Subnets per subscription, each behind its own NSG (the VMs are spread over them; no NIC NSGs). */
  nsgsPerSubscription: number;
}

export interface LargeEstate {
  subscriptionIds: string[];
  /** VMs of each subscription, in the order of `subscriptionIds`. */
  vms: BenchVm[][];
  /** One auto-approving policy per subscription (not enforcing: the reconciler reads, it does not write). */
  policies: Policy[];
}

/**
 * A landing zone at scale: `subscriptions` subscriptions, each with one VNet whose subnets each sit behind an NSG
 * of their own, and `vmsPerSubscription` VMs spread over them — e.g. 10,000 VMs behind 1,000 NSGs in 20
 * subscriptions.
 */
export function addLargeEstate(arm: ArmEmulator, o: LargeEstateOptions): LargeEstate {
  const rg = 'estate-rg';
  const subscriptionIds = Array.from(
    { length: o.subscriptions },
    (_, i) => `00000000-0000-0000-0000-${String(100 + i).padStart(12, '0')}`,
  );
  // The JIT role on each subscription, as a deployment assigns it to every policy scope (docs/deploy.md).
  for (const s of subscriptionIds)
    arm.roles.assign({
      principalId: DEMO.identity.objectId,
      scope: `/subscriptions/${s}`,
      actions: [...JIT_ROLE_ACTIONS],
    });
  const perSubnet = Math.ceil(o.vmsPerSubscription / o.nsgsPerSubscription);
  const vms = subscriptionIds.map((s) => {
    const out: BenchVm[] = [];
    for (let v = 0; v < o.vmsPerSubscription; v++) {
      const n = Math.floor(v / perSubnet);
      const name = `estate-vm-${n}-${v % perSubnet}`;
      const nsg = `estate-snet${n}-nsg`;
      arm.addVm({
        subscriptionId: s,
        resourceGroup: rg,
        name,
        nics: [
          {
            name: `${name}-nic`,
            ipConfigurations: [
              {
                privateIpAddress: `10.${Math.floor(n / 250)}.${n % 250}.${4 + (v % perSubnet)}`,
                subnet: {
                  vnet: 'estate-vnet',
                  name: `snet${n}`,
                  vnetAddressPrefix: '10.0.0.0/8',
                  addressPrefix: `10.${Math.floor(n / 250)}.${n % 250}.0/24`,
                  nsg,
                },
              },
            ],
          },
        ],
      });
      out.push({ id: ids.vm(s, rg, name), name, nsgIds: [ids.nsg(s, rg, nsg).toLowerCase()] });
    }
    return out;
  });
  const policies = subscriptionIds.map((s): Policy => ({
    ...estatePolicy(rg),
    scope: `/subscriptions/${s}`.toLowerCase(),
  }));
  return { subscriptionIds, vms, policies };
}
