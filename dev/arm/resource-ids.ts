/**
 * ARM resource ids. ARM treats every segment case-insensitively, so the emulator keys resources by
 * the lower-cased id and always answers with the canonical casing it was created with.
 */

export const NETWORK = 'Microsoft.Network';
export const COMPUTE = 'Microsoft.Compute';

export function resourceGroupId(subscriptionId: string, resourceGroup: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
}

export function resourceId(
  subscriptionId: string,
  resourceGroup: string,
  provider: string,
  type: string,
  name: string,
): string {
  return `${resourceGroupId(subscriptionId, resourceGroup)}/providers/${provider}/${type}/${name}`;
}

export const ids = {
  vm: (s: string, rg: string, name: string) => resourceId(s, rg, COMPUTE, 'virtualMachines', name),
  nic: (s: string, rg: string, name: string) => resourceId(s, rg, NETWORK, 'networkInterfaces', name),
  vnet: (s: string, rg: string, name: string) => resourceId(s, rg, NETWORK, 'virtualNetworks', name),
  subnet: (s: string, rg: string, vnet: string, name: string) => `${ids.vnet(s, rg, vnet)}/subnets/${name}`,
  nsg: (s: string, rg: string, name: string) => resourceId(s, rg, NETWORK, 'networkSecurityGroups', name),
  rule: (nsgId: string, name: string) => `${nsgId}/securityRules/${name}`,
  defaultRule: (nsgId: string, name: string) => `${nsgId}/defaultSecurityRules/${name}`,
};

export function key(id: string): string {
  return id.toLowerCase();
}
