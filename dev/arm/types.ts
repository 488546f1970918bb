/**
 * Public types of the ARM emulator. Resource shapes are the ARM wire (JSON) shapes, with
 * `properties` nested, not the flattened models of the `@azure/arm-*` SDKs: tests that inspect the
 * emulator see what Azure would send.
 */

export type ProvisioningState = 'Succeeded' | 'Updating' | 'Deleting' | 'Failed';
export type RuleAccess = 'Allow' | 'Deny';
export type RuleDirection = 'Inbound' | 'Outbound';
export type RuleProtocol = 'Tcp' | 'Udp' | 'Icmp' | 'Esp' | 'Ah' | '*';
export type OsType = 'Linux' | 'Windows';

/** `properties` of a security rule as ARM returns it (unused plural fields are empty arrays). */
export interface SecurityRuleProperties {
  description?: string;
  protocol: RuleProtocol;
  sourcePortRange?: string;
  sourcePortRanges: string[];
  destinationPortRange?: string;
  destinationPortRanges: string[];
  sourceAddressPrefix?: string;
  sourceAddressPrefixes: string[];
  destinationAddressPrefix?: string;
  destinationAddressPrefixes: string[];
  access: RuleAccess;
  priority: number;
  direction: RuleDirection;
  provisioningState: ProvisioningState;
}

/** A security rule (or default security rule) in ARM JSON shape. */
export interface ArmSecurityRule {
  id: string;
  name: string;
  etag: string;
  type:
    | 'Microsoft.Network/networkSecurityGroups/securityRules'
    | 'Microsoft.Network/networkSecurityGroups/defaultSecurityRules';
  properties: SecurityRuleProperties;
}

/**
 * A rule written out of band ({@link ArmEmulator.putRuleDirect}), as a person would in the portal.
 * Same fields as a PUT body; validated like one.
 */
export interface SecurityRuleInput {
  name: string;
  properties: {
    description?: string;
    protocol: RuleProtocol;
    access: RuleAccess;
    direction: RuleDirection;
    priority: number;
    sourcePortRange?: string;
    sourcePortRanges?: string[];
    destinationPortRange?: string;
    destinationPortRanges?: string[];
    sourceAddressPrefix?: string;
    sourceAddressPrefixes?: string[];
    destinationAddressPrefix?: string;
    destinationAddressPrefixes?: string[];
  };
}

/** An NSG as the emulator holds it. Rules with an operation in flight show `Updating`/`Deleting`. */
export interface NsgState {
  id: string;
  name: string;
  location: string;
  /** Network RP gives an NSG and all its rules one etag, renewed on every change. */
  etag: string;
  provisioningState: ProvisioningState;
  securityRules: ArmSecurityRule[];
  defaultSecurityRules: ArmSecurityRule[];
  /** Ids of the NICs and subnets the NSG is attached to. */
  networkInterfaces: string[];
  subnets: string[];
  /** `properties.flushConnection`: rule changes re-evaluate established flows (see model.ts). */
  flushConnection: boolean;
  /** How many times the NSG's flows were re-evaluated (enabling flushConnection, then each rule change). */
  flowReevaluations: number;
}

/** Reference to an NSG: a name in the resource group of what it is attached to, or a full location. */
export type NsgRef = string | { name: string; resourceGroup: string };

/**
 * A VM and the network in front of it. Missing VNets, subnets and NSGs are created; existing ones
 * (matched case-insensitively) are reused, so several VMs can share a subnet and its NSG.
 */
export interface VmSpec {
  /** Default: the demo subscription. */
  subscriptionId?: string;
  resourceGroup: string;
  name: string;
  /** Default `westeurope`. */
  location?: string;
  /** Default `Linux`. */
  osType?: OsType;
  /** The VM's unique id (`properties.vmId`). Default: a random UUID. */
  vmId?: string;
  /** Default `Standard_B2s`. */
  vmSize?: string;
  /** At least one; the first is the primary NIC. NICs live in the VM's resource group. */
  nics: NicSpec[];
}

export interface NicSpec {
  name: string;
  /** NSG attached to the NIC itself. Omit for a NIC whose only filter is the subnet's NSG. */
  nsg?: NsgRef;
  /** At least one; the first is primary and must be IPv4 (an Azure requirement). */
  ipConfigurations: IpConfigurationSpec[];
}

export interface IpConfigurationSpec {
  /** Default `ipconfig1`, `ipconfig2`, ... */
  name?: string;
  /** IPv4 or IPv6; the family sets `privateIPAddressVersion`. Must lie in the subnet. */
  privateIpAddress: string;
  subnet: SubnetSpec;
}

export interface SubnetSpec {
  vnet: string;
  name: string;
  /** Default: the VM's resource group. */
  resourceGroup?: string;
  /**
   * Used when the VNet first gets a prefix of this prefix's family. Default: the /16 (IPv4) or /48
   * (IPv6) around the address.
   */
  vnetAddressPrefix?: string;
  /**
   * Used when the subnet first gets a prefix of this prefix's family (a dual-stack subnet gets the
   * other family's default). Default: the /24 (IPv4) or /64 (IPv6) around the address.
   */
  addressPrefix?: string;
  /** NSG attached to the subnet. Must agree with the subnet's NSG if the subnet already exists. */
  nsg?: NsgRef;
}
