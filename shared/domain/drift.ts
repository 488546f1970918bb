import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { isOwnRuleName } from './ruleNames';
import type { SecurityRuleView } from './types';

/** What JIT guards in one NSG: the ports policies manage, and the VM addresses behind it that they cover. */
export interface ProtectedSurface {
  ports: readonly number[];
  /** Empty when unknown: then any destination counts. */
  addresses: readonly string[];
}

const ANY_SOURCE = new Set(['*', 'any', 'internet', '0.0.0.0/0', '::/0']);

/**
 * Whether a rule's source is broad enough to defeat JIT: anywhere, the Internet tag, or a public prefix wider
 * than a /16 (IPv4) or /32 (IPv6). Private ranges and service tags such as VirtualNetwork are someone's design,
 * not drift.
 */
export function isBroadSource(prefix: string): boolean {
  const p = prefix.trim().toLowerCase();
  if (ANY_SOURCE.has(p)) return true;
  if (!p.includes('/')) return false;
  try {
    const [addr, len] = ipaddr.parseCIDR(p);
    if (addr.range() !== 'unicast' && len > 0) return false;
    return addr.kind() === 'ipv4' ? len < 16 : len < 32;
  } catch {
    return false;
  }
}

/**
 * Someone else's inbound allow rules that open a protected port to a broad source, towards a protected address
 * (or any address). JIT never changes them; it reports them. Our own rules are never drift.
 */
export function findDrift(rules: readonly SecurityRuleView[], surface: ProtectedSurface): SecurityRuleView[] {
  if (surface.ports.length === 0) return [];
  return rules.filter(
    (r) =>
      !isOwnRuleName(r.name) &&
      r.direction === 'Inbound' &&
      r.access === 'Allow' &&
      ['tcp', 'udp', '*'].includes(r.protocol.toLowerCase()) &&
      r.sourceAddressPrefixes.some(isBroadSource) &&
      surface.ports.some((port) => r.destinationPortRanges.some((range) => portInRange(port, range))) &&
      reachesAny(r.destinationAddressPrefixes, surface.addresses),
  );
}

/** A short, stable identity of a rule's content, so the same drift is reported once, and a change again. */
export function ruleFingerprint(r: SecurityRuleView): string {
  const content = JSON.stringify([
    r.priority,
    r.access,
    r.protocol,
    [...r.sourceAddressPrefixes].sort(),
    [...r.destinationAddressPrefixes].sort(),
    [...r.destinationPortRanges].sort(),
  ]);
  return `${r.name.toLowerCase()}@${createHash('sha256').update(content).digest('hex').slice(0, 12)}`;
}

export function portInRange(port: number, range: string): boolean {
  const r = range.trim();
  if (r === '*') return true;
  const m = /^(\d+)(?:-(\d+))?$/.exec(r);
  if (!m) return false;
  const low = Number(m[1]);
  const high = m[2] === undefined ? low : Number(m[2]);
  return port >= low && port <= high;
}

function reachesAny(destinations: readonly string[], addresses: readonly string[]): boolean {
  if (addresses.length === 0) return true;
  return destinations.some((d) => {
    const t = d.trim();
    if (t === '*' || t.toLowerCase() === 'virtualnetwork') return true;
    return addresses.some((a) => contains(t, a));
  });
}

function contains(prefix: string, address: string): boolean {
  try {
    const addr = ipaddr.parse(address);
    if (!prefix.includes('/')) return ipaddr.parse(prefix).toString() === addr.toString();
    const range = ipaddr.parseCIDR(prefix);
    return addr.kind() === range[0].kind() && addr.match(range);
  } catch {
    return false;
  }
}
