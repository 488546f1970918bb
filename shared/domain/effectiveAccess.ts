import ipaddr from 'ipaddr.js';
import { portInRange } from './drift';
import type { PriorityBand } from './priority';
import { isDefenderJitRuleName, sameRuleName } from './ruleNames';
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

/** How far above Defender's deny rule a grant's rule may go: the 100 priorities right above it. */
const ABOVE_DEFENDER = 100;

/**
 * The priorities a grant's rule may take in an NSG. Defender for Cloud's JIT keeps a "deny all inbound traffic"
 * rule for the ports of each VM it manages, at a priority it chooses (its users see 1000 often, where JIT's own
 * default band starts), and a grant below it in the evaluation order lets nothing in. Where such a deny rule would
 * shadow the grant anywhere in the band, the band ends right above it; if the band starts at or below that rule,
 * the grant goes into the 100 priorities right above it instead (1000 → 900-999), clear of the allow rules Defender
 * writes near the top (100 and up). Only Defender's rules move the band: an operator's deny rule is theirs to mean
 * (the grant is written and reported as shadowed). Priority 100 is the highest there is: a deny rule there cannot
 * be overtaken, and the band stays. Sources: https://learn.microsoft.com/azure/defender-for-cloud/just-in-time-access-overview
 * (the deny rules; existing rules on the ports keep priority over them) and
 * https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules (priorities
 * 100-4096, lowest number first).
 */
export function bandClearOfDefender(
  rules: readonly SecurityRuleView[],
  band: PriorityBand,
  grant: Omit<WrittenAllow, 'priority'>,
): PriorityBand {
  const defender = rules.filter((r) => isDefenderJitRuleName(r.name));
  const shadow = findShadow(defender, { ...grant, priority: band.max + 1 });
  if (!shadow || shadow.priority <= 100) return band;
  if (shadow.priority > band.min) return { min: band.min, max: shadow.priority - 1 };
  return { min: Math.max(100, shadow.priority - ABOVE_DEFENDER), max: shadow.priority - 1 };
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
