import ipaddr from 'ipaddr.js';
import { GrantNotApplicable } from './errors';
import { INTERNET_TAG, parsePrefix } from './network';
import type { NsgGuard, VmNetworkPath } from './types';

/** A NIC as ARM describes it, reduced to what decides the network path. */
export interface NicDescription {
  id: string;
  /** NSG attached to the NIC itself, if any. */
  nsgId?: string;
  ipConfigurations: Array<{ privateAddress?: string; subnetId?: string }>;
}

/** A VM as ARM describes it, reduced to what decides the network path. */
export interface VmDescription {
  id: string;
  name: string;
  osType?: 'Linux' | 'Windows';
  nics: NicDescription[];
}

export type AddressFamily = 'ipv4' | 'ipv6';

/**
 * The NSGs in front of a VM and the addresses each one filters. Inbound traffic to an IP configuration meets
 * its subnet's NSG, then its NIC's NSG, and must be allowed by both; so subnet NSGs come first. An NSG attached
 * to both a subnet and a NIC of the VM is listed once, with every address it filters.
 * `subnetNsgOf` answers with the NSG of a subnet (by id), or undefined when it has none.
 */
export function buildNetworkPath(
  vm: VmDescription,
  subnetNsgOf: (subnetId: string) => string | undefined,
): VmNetworkPath {
  const subnetGuards = new Map<string, Set<string>>();
  const nicGuards = new Map<string, Set<string>>();
  const addresses = new Set<string>();
  const unguarded = new Set<string>();
  const add = (map: Map<string, Set<string>>, nsgId: string, address: string) => {
    const key = nsgId.toLowerCase();
    map.set(key, (map.get(key) ?? new Set()).add(address));
  };
  for (const nic of vm.nics) {
    for (const ipc of nic.ipConfigurations) {
      const address = canonicalAddress(ipc.privateAddress);
      if (!address) continue;
      addresses.add(address);
      const subnetNsg = ipc.subnetId ? subnetNsgOf(ipc.subnetId) : undefined;
      if (subnetNsg) add(subnetGuards, subnetNsg, address);
      if (nic.nsgId) add(nicGuards, nic.nsgId, address);
      if (!subnetNsg && !nic.nsgId) unguarded.add(address);
    }
  }
  const merged = new Map<string, Set<string>>(subnetGuards);
  for (const [nsgId, set] of nicGuards) merged.set(nsgId, new Set([...(merged.get(nsgId) ?? []), ...set]));
  const guards: NsgGuard[] = [...merged].map(([nsgId, set]) => ({ nsgId, addresses: [...set] }));
  return {
    vmId: vm.id,
    vmName: vm.name,
    osType: vm.osType,
    privateAddresses: [...addresses],
    nsgIds: guards.map((g) => g.nsgId),
    guards,
    unguardedAddresses: [...unguarded],
  };
}

/** Where one grant's rule goes: an NSG and the destinations it opens there (one address family). */
export interface RulePlacement {
  nsgId: string;
  destinations: string[];
}

/**
 * The rules one grant needs: in every NSG that filters an address of the source's family, a rule opening
 * exactly those addresses. Throws `GrantNotApplicable` when there is nothing JIT could open: no NSG in the
 * path (the port is already exposed, or unreachable), no address of the family, or none an NSG filters.
 */
export function planGrantRules(path: VmNetworkPath, sourcePrefix: string): RulePlacement[] {
  if (path.guards.length === 0) {
    throw new GrantNotApplicable(
      'the VM has no network security group in its path: there is no rule to open (the port is either already exposed or unreachable)',
    );
  }
  const family = grantFamily(path, sourcePrefix);
  const label = family === 'ipv6' ? 'IPv6' : 'IPv4';
  const placements = path.guards
    .map((g) => ({ nsgId: g.nsgId, destinations: g.addresses.filter((a) => familyOf(a) === family) }))
    .filter((p) => p.destinations.length > 0);
  if (placements.length === 0) {
    const ofFamily = path.privateAddresses.filter((a) => familyOf(a) === family);
    throw new GrantNotApplicable(
      ofFamily.length === 0
        ? `the VM has no private ${label} address to open`
        : `no network security group filters the VM's ${label} address(es) ${ofFamily.join(', ')}: there is no rule to open`,
    );
  }
  return placements;
}

/**
 * The address family a grant opens. An NSG rule holds one family; `*` names none, so it opens IPv4 where the
 * VM has it (a policy that means IPv6 from anywhere says `::/0`).
 */
function grantFamily(path: VmNetworkPath, sourcePrefix: string): AddressFamily {
  const source = parsePrefix(sourcePrefix);
  // `*` and the Internet tag name no family.
  if (source.cidr !== '*' && source.cidr !== INTERNET_TAG) return source.family;
  return path.privateAddresses.some((a) => familyOf(a) === 'ipv4') ? 'ipv4' : 'ipv6';
}

export function familyOf(address: string): AddressFamily {
  return ipaddr.parse(address.split('/')[0] ?? address).kind();
}

/** One spelling per address (IPv6 compressed, IPv4-mapped IPv6 unmapped), so sets and comparisons work. */
function canonicalAddress(text: string | undefined): string | undefined {
  if (!text || !ipaddr.isValid(text.trim())) return undefined;
  const a = ipaddr.parse(text.trim());
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress())
    return (a as ipaddr.IPv6).toIPv4Address().toString();
  return a.toString();
}
