import ipaddr from 'ipaddr.js';
import { portInRange } from './drift';
import { sameRuleName } from './ruleNames';
import type { SecurityRuleView } from './types';

/** A grant's allow rule as written in one NSG. */
export interface WrittenAllow {
  name: string;
  priority: number;
  protocol: string;
  sourcePrefix: string;
  destinations: readonly string[];
  ports: readonly number[];
}

/** Why an allow rule lets nothing in: the deny rule that matches first, and for which ports. */
export interface Shadow {
  rule: string;
  priority: number;
  ports: number[];
}

/**
 * The deny rule that traffic of the grant meets before its allow rule, if any: NSG rules are evaluated by priority,
 * lowest number first, and the first match decides
 * (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules). A deny rule
 * shadows the grant for a port when it has a lower number, covers the protocol, the port, the whole source prefix
 * and a destination address of the grant. The first such rule (by priority) is the one reported.
 */
export function findShadow(rules: readonly SecurityRuleView[], grant: WrittenAllow): Shadow | undefined {
  const candidates = rules
    .filter(
      (r) =>
        !sameRuleName(r.name, grant.name) &&
        r.direction === 'Inbound' &&
        r.access === 'Deny' &&
        r.priority < grant.priority &&
        (r.protocol === '*' || r.protocol.toLowerCase() === grant.protocol.toLowerCase()) &&
        r.sourceAddressPrefixes.some((s) => sourceCovers(s, grant.sourcePrefix)) &&
        r.destinationAddressPrefixes.some((d) => grant.destinations.some((a) => destinationCovers(d, a))),
    )
    .sort((a, b) => a.priority - b.priority);
  for (const r of candidates) {
    const ports = grant.ports.filter((p) => r.destinationPortRanges.some((range) => portInRange(p, range)));
    if (ports.length) return { rule: r.name, priority: r.priority, ports };
  }
  return undefined;
}

export function describeShadow(s: Shadow): string {
  return `${s.rule} (deny, priority ${s.priority}) for port${s.ports.length === 1 ? '' : 's'} ${s.ports.join(',')}`;
}

/** Whether a rule's source entry matches every address of the grant's source. */
function sourceCovers(entry: string, source: string): boolean {
  const e = entry.trim().toLowerCase();
  if (e === '*' || e === '0.0.0.0/0' || e === '::/0') return e === '*' || familyOf(source) === familyOf(e);
  if (source === '*') return false;
  // The Internet tag is the address space outside the virtual network that the public internet reaches.
  if (e === 'internet') return source.toLowerCase() === 'internet' || isPublic(source);
  return contains(entry, source);
}

function destinationCovers(entry: string, address: string): boolean {
  const e = entry.trim().toLowerCase();
  // A VM's private address is inside its virtual network's address space.
  if (e === '*' || e === 'virtualnetwork') return true;
  return contains(entry, address);
}

function contains(outer: string, inner: string): boolean {
  try {
    const [iAddr, iLen] = inner.includes('/') ? ipaddr.parseCIDR(inner) : [ipaddr.parse(inner), -1];
    const [oAddr, oLen] = outer.includes('/')
      ? ipaddr.parseCIDR(outer)
      : [ipaddr.parse(outer), ipaddr.parse(outer).kind() === 'ipv4' ? 32 : 128];
    if (iAddr.kind() !== oAddr.kind()) return false;
    const innerLen = iLen === -1 ? (iAddr.kind() === 'ipv4' ? 32 : 128) : iLen;
    return innerLen >= oLen && iAddr.match(oAddr, oLen);
  } catch {
    return false;
  }
}

function familyOf(prefix: string): string | undefined {
  if (prefix === '0.0.0.0/0') return 'ipv4';
  if (prefix === '::/0') return 'ipv6';
  try {
    return ipaddr.parse(prefix.split('/')[0] ?? prefix).kind();
  } catch {
    return undefined;
  }
}

/**
 * Outside the private, shared and local ranges. Reserved ranges (documentation, benchmarking) count as public: for a
 * shadow check, erring towards "shadowed" is the side that tells the operator.
 */
function isPublic(prefix: string): boolean {
  try {
    const [addr] = prefix.includes('/') ? ipaddr.parseCIDR(prefix) : [ipaddr.parse(prefix)];
    return !['private', 'loopback', 'linkLocal', 'uniqueLocal', 'carrierGradeNat', 'unspecified'].includes(
      addr.range(),
    );
  } catch {
    return false;
  }
}
