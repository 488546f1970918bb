/**
 * The demo estate the emulator starts with: two VMs behind NSGs, one with a NIC NSG and a subnet NSG
 * in its path, one with only the subnet NSG. Each NSG carries one baseline rule of the operator's
 * that JIT rules must coexist with. Next to them, two VMs for what production meets:
 * - `defender-vm` (resource group `defender-rg`), whose NIC NSG already carries Microsoft Defender for Cloud's
 *   JIT rules (a deny rule at 1000 and an allow rule of a live Defender request at 100);
 * - `spoke-vm` in a landing-zone subscription, whose VNet and subnet NSG live in a hub resource group the
 *   deployment's role does not cover (a hub-and-spoke estate where JIT was given the application's resource group).
 * And the deployment's identity with the role a deployment gives it (infra/modules/role-assignments.bicep).
 */
import type { RoleAssignmentSpec } from './authorization';
import { DEFAULT_LOCATION, DEFAULT_SUBSCRIPTION_ID } from './model';
import { ids, resourceGroupId } from './resource-ids';
import type { SecurityRuleInput, VmSpec } from './types';

const subscriptionId = DEFAULT_SUBSCRIPTION_ID;
const resourceGroup = 'demo-rg';
const subnetNsgId = ids.nsg(subscriptionId, resourceGroup, 'demo-subnet-nsg');
const linuxNicNsgId = ids.nsg(subscriptionId, resourceGroup, 'demo-vm-nic-nsg');
const landingZone = '00000000-0000-0000-0000-000000000002';
const defenderNicNsgId = ids.nsg(subscriptionId, 'defender-rg', 'defender-vm-nic-nsg');
const hubNsgId = ids.nsg(landingZone, 'hub-network-rg', 'hub-spokes-nsg');

/**
 * The actions of the custom role the deployment gives its identity ("JIT Access NSG Rule Operator",
 * infra/modules/role-assignments.bicep; test/dev/arm.test.ts keeps the two lists equal).
 */
export const JIT_ROLE_ACTIONS: readonly string[] = [
  'Microsoft.Compute/virtualMachines/read',
  'Microsoft.Network/networkInterfaces/read',
  // The reconciler reads a scope's subnets and their NSGs from one virtual-network listing.
  'Microsoft.Network/virtualNetworks/read',
  'Microsoft.Network/virtualNetworks/subnets/read',
  'Microsoft.Network/networkSecurityGroups/securityRules/read',
  'Microsoft.Network/networkSecurityGroups/securityRules/write',
  'Microsoft.Network/networkSecurityGroups/securityRules/delete',
  'Microsoft.Network/locations/operations/read',
  'Microsoft.Network/locations/operationResults/read',
  'Microsoft.Authorization/locks/read',
  'Microsoft.Authorization/permissions/read',
];

/** The actions of the second, opt-in role that lets JIT set `flushConnection` on NSGs (policy `cutSessions`). */
const JIT_FLUSH_ROLE_ACTIONS: readonly string[] = [
  'Microsoft.Network/networkSecurityGroups/read',
  'Microsoft.Network/networkSecurityGroups/write',
];

const identity = {
  clientId: '7d3c9a8e-0000-4000-8000-00000000a11c',
  objectId: '7d3c9a8e-0000-4000-8000-00000000a0b1',
};

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
  /** The deployment's managed identity: the principal of every opaque bearer token (the sandbox's credential). */
  identity,
  /**
   * What a deployment with `targetScopes` = the demo subscription and the landing zone's application resource group
   * assigns: the JIT role on both (and the opt-in flush role on the demo subscription). Nothing on the hub.
   */
  roleAssignments: [
    {
      principalId: identity.objectId,
      scope: `/subscriptions/${subscriptionId}`,
      actions: [...JIT_ROLE_ACTIONS],
    },
    {
      principalId: identity.objectId,
      scope: `/subscriptions/${subscriptionId}`,
      actions: [...JIT_FLUSH_ROLE_ACTIONS],
    },
    {
      principalId: identity.objectId,
      scope: resourceGroupId(landingZone, 'spoke-app-rg'),
      actions: [...JIT_ROLE_ACTIONS],
    },
  ] satisfies RoleAssignmentSpec[],
  /**
   * A VM whose NIC NSG carries Defender for Cloud's JIT rules. Defender writes a deny rule for the policy's ports when
   * JIT is enabled and an allow rule above it for an approved request, and restores the NSG when it ends
   * (https://learn.microsoft.com/azure/defender-for-cloud/just-in-time-access-overview; the policy API is
   * Azure/azure-rest-api-specs specification/security/resource-manager/Microsoft.Security/stable/2020-01-01/jitNetworkAccessPolicies.json).
   * It reorders existing rules' priorities to make room (https://github.com/MicrosoftDocs/azure-docs/issues/103634), and
   * its rule descriptions can exceed the 140-character limit (https://github.com/MicrosoftDocs/azure-docs/issues/112218).
   * The names and descriptions below follow rules exported from live NSGs in public repositories; Microsoft does not
   * document them.
   */
  defenderVm: {
    name: 'defender-vm',
    resourceGroup: 'defender-rg',
    id: ids.vm(subscriptionId, 'defender-rg', 'defender-vm'),
    privateIp: '10.0.7.4',
    subnetNsgId: ids.nsg(subscriptionId, 'defender-rg', 'defender-subnet-nsg'),
    nicNsgId: defenderNicNsgId,
    /** Defender's deny rule, written when JIT is enabled on the VM: `*` to the VM on every managed port. */
    denyRule: {
      name: 'SecurityCenter-JITRule_-1532384372_4A4B6C5D8E9F40A1B2C3D4E5F6A7B8C9',
      properties: {
        description: "ASC JIT Network Access rule for policy 'default' of VM 'defender-vm'.",
        protocol: '*',
        access: 'Deny',
        direction: 'Inbound',
        priority: 1000,
        sourcePortRange: '*',
        sourceAddressPrefix: '*',
        destinationAddressPrefix: '10.0.7.4',
        destinationPortRanges: ['22', '3389', '5985', '5986'],
      },
    } satisfies SecurityRuleInput,
    /** An allow rule of a live Defender request from one address. */
    allowRule: {
      name: 'SecurityCenter-JITRule-1984529921-0F1E2D3C4B5A69788796A5B4C3D2E1F0',
      properties: {
        description:
          "ASC JIT Network Access rule created by an initiation request for policy 'default' of VM 'defender-vm'.",
        protocol: '*',
        access: 'Allow',
        direction: 'Inbound',
        priority: 100,
        sourcePortRange: '*',
        sourceAddressPrefix: '198.51.100.77',
        destinationAddressPrefix: '10.0.7.4',
        destinationPortRange: '22',
      },
    } satisfies SecurityRuleInput,
  },
  /** A VM in a landing-zone subscription whose VNet and subnet NSG sit in a hub resource group. */
  spokeVm: {
    subscriptionId: landingZone,
    name: 'spoke-vm',
    resourceGroup: 'spoke-app-rg',
    id: ids.vm(landingZone, 'spoke-app-rg', 'spoke-vm'),
    privateIp: '10.20.1.4',
    hubResourceGroup: 'hub-network-rg',
    subnetId: ids.subnet(landingZone, 'hub-network-rg', 'hub-spokes-vnet', 'app'),
    subnetNsgId: hubNsgId,
  },
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

const EXTRA_VMS: readonly VmSpec[] = [
  {
    subscriptionId,
    resourceGroup: DEMO.defenderVm.resourceGroup,
    name: DEMO.defenderVm.name,
    nics: [
      {
        name: 'defender-vm-nic',
        nsg: 'defender-vm-nic-nsg',
        ipConfigurations: [
          {
            privateIpAddress: DEMO.defenderVm.privateIp,
            subnet: {
              vnet: 'demo-vnet',
              name: 'defender',
              resourceGroup,
              addressPrefix: '10.0.7.0/24',
              nsg: { name: 'defender-subnet-nsg', resourceGroup: DEMO.defenderVm.resourceGroup },
            },
          },
        ],
      },
    ],
  },
  {
    subscriptionId: landingZone,
    resourceGroup: DEMO.spokeVm.resourceGroup,
    name: DEMO.spokeVm.name,
    nics: [
      {
        name: 'spoke-vm-nic',
        ipConfigurations: [
          {
            privateIpAddress: DEMO.spokeVm.privateIp,
            subnet: {
              vnet: 'hub-spokes-vnet',
              name: 'app',
              resourceGroup: DEMO.spokeVm.hubResourceGroup,
              vnetAddressPrefix: '10.20.0.0/16',
              addressPrefix: '10.20.1.0/24',
              nsg: 'hub-spokes-nsg',
            },
          },
        ],
      },
    ],
  },
];

/** Builds the demo estate in anything that can add VMs and write rules (the emulator). */
export function seedDemo(target: {
  addVm(spec: VmSpec): void;
  putRuleDirect(nsgId: string, rule: SecurityRuleInput): void;
}): void {
  for (const vm of [...DEMO_VMS, ...EXTRA_VMS]) target.addVm(vm);
  for (const rule of [DEMO.defenderVm.denyRule, DEMO.defenderVm.allowRule]) {
    target.putRuleDirect(DEMO.defenderVm.nicNsgId, structuredClone(rule));
  }
  const baseline: SecurityRuleInput = {
    name: DEMO.baselineRule.name,
    properties: {
      ...DEMO.baselineRule.properties,
      destinationPortRanges: [...DEMO.baselineRule.properties.destinationPortRanges],
    },
  };
  for (const nsgId of [DEMO.subnetNsgId, DEMO.linuxVm.nicNsgId]) target.putRuleDirect(nsgId, baseline);
}
