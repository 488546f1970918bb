/**
 * The demo estate the emulator starts with: two VMs behind NSGs, one with a NIC NSG and a subnet NSG
 * in its path, one with only the subnet NSG. Each NSG carries one baseline rule of the operator's
 * that JIT rules must coexist with.
 */
import { DEFAULT_LOCATION, DEFAULT_SUBSCRIPTION_ID } from './model';
import { ids } from './resource-ids';
import type { SecurityRuleInput, VmSpec } from './types';

const subscriptionId = DEFAULT_SUBSCRIPTION_ID;
const resourceGroup = 'demo-rg';
const subnetNsgId = ids.nsg(subscriptionId, resourceGroup, 'demo-subnet-nsg');
const linuxNicNsgId = ids.nsg(subscriptionId, resourceGroup, 'demo-vm-nic-nsg');

/** Ids and addresses of the demo estate, for tests and the sandbox. */
export const DEMO = {
  subscriptionId,
  resourceGroup,
  location: DEFAULT_LOCATION,
  vnetId: ids.vnet(subscriptionId, resourceGroup, 'demo-vnet'),
  subnetId: ids.subnet(subscriptionId, resourceGroup, 'demo-vnet', 'default'),
  subnetNsgId,
  linuxVm: {
    name: 'demo-vm',
    id: ids.vm(subscriptionId, resourceGroup, 'demo-vm'),
    vmId: '6c0b3c4e-0a55-4d0f-9a67-1d1b8f2f0001',
    osType: 'Linux',
    nicId: ids.nic(subscriptionId, resourceGroup, 'demo-vm-nic'),
    nicNsgId: linuxNicNsgId,
    privateIp: '10.0.1.4',
    /** NSGs an inbound packet crosses, in Azure's evaluation order (subnet, then NIC). */
    nsgIds: [subnetNsgId, linuxNicNsgId],
  },
  windowsVm: {
    name: 'demo-win',
    id: ids.vm(subscriptionId, resourceGroup, 'demo-win'),
    vmId: '6c0b3c4e-0a55-4d0f-9a67-1d1b8f2f0002',
    osType: 'Windows',
    nicId: ids.nic(subscriptionId, resourceGroup, 'demo-win-nic'),
    privateIp: '10.0.1.5',
    nsgIds: [subnetNsgId],
  },
  /** The operator's rule present in every demo NSG. */
  baselineRule: {
    name: 'deny-mgmt-inbound',
    properties: {
      description: 'Operator baseline: no management ports from anywhere',
      protocol: 'Tcp',
      access: 'Deny',
      direction: 'Inbound',
      priority: 4000,
      sourcePortRange: '*',
      destinationPortRanges: ['22', '3389'],
      sourceAddressPrefix: '*',
      destinationAddressPrefix: '*',
    },
  } satisfies SecurityRuleInput,
} as const;

const demoSubnet = {
  vnet: 'demo-vnet',
  name: 'default',
  vnetAddressPrefix: '10.0.0.0/16',
  addressPrefix: '10.0.1.0/24',
  nsg: 'demo-subnet-nsg',
};

export const DEMO_VMS: readonly VmSpec[] = [
  {
    subscriptionId,
    resourceGroup,
    name: DEMO.linuxVm.name,
    osType: 'Linux',
    vmId: DEMO.linuxVm.vmId,
    nics: [
      {
        name: 'demo-vm-nic',
        nsg: 'demo-vm-nic-nsg',
        ipConfigurations: [{ privateIpAddress: DEMO.linuxVm.privateIp, subnet: demoSubnet }],
      },
    ],
  },
  {
    subscriptionId,
    resourceGroup,
    name: DEMO.windowsVm.name,
    osType: 'Windows',
    vmId: DEMO.windowsVm.vmId,
    nics: [
      {
        name: 'demo-win-nic',
        ipConfigurations: [{ privateIpAddress: DEMO.windowsVm.privateIp, subnet: demoSubnet }],
      },
    ],
  },
];

/** Builds the demo estate in anything that can add VMs and write rules (the emulator). */
export function seedDemo(target: {
  addVm(spec: VmSpec): void;
  putRuleDirect(nsgId: string, rule: SecurityRuleInput): void;
}): void {
  for (const vm of DEMO_VMS) target.addVm(vm);
  const baseline: SecurityRuleInput = {
    name: DEMO.baselineRule.name,
    properties: {
      ...DEMO.baselineRule.properties,
      destinationPortRanges: [...DEMO.baselineRule.properties.destinationPortRanges],
    },
  };
  for (const nsgId of [DEMO.subnetNsgId, DEMO.linuxVm.nicNsgId]) target.putRuleDirect(nsgId, baseline);
}
