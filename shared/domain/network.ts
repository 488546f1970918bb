import ipaddr from 'ipaddr.js';

/** An IPv4 or IPv6 prefix in canonical CIDR form, e.g. `203.0.113.7/32`. */
export interface Prefix {
  readonly cidr: string;
  readonly family: 'ipv4' | 'ipv6';
  readonly any: boolean;
}

const ANY = new Set(['*', 'any']);

/**
 * The `Internet` service tag: the address space outside the virtual network that the public internet reaches
 * (https://learn.microsoft.com/azure/virtual-network/service-tags-overview#available-service-tags). Narrower than
 * `*`, which also matches the virtual network and Azure's load balancer: "internet" means this, never `*`.
 */
export const INTERNET_TAG = 'Internet';

/**
 * Parses an address or a prefix the way an NSG rule would hold it. A bare address becomes /32 or /128.
 * Host bits are refused (`10.0.0.1/24`) rather than silently masked: the caller should say what they mean.
 * `internet` (any case) is the `Internet` service tag.
 */
export function parsePrefix(text: string): Prefix {
  const t = text.trim();
  if (ANY.has(t.toLowerCase())) return { cidr: '*', family: 'ipv4', any: true };
  if (t.toLowerCase() === 'internet') return { cidr: INTERNET_TAG, family: 'ipv4', any: true };
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  let len: number;
  if (t.includes('/')) {
    try {
      [addr, len] = ipaddr.parseCIDR(t);
    } catch {
      throw new RangeError('must be an IPv4 or IPv6 address or CIDR prefix');
    }
  } else {
    if (!ipaddr.isValid(t)) throw new RangeError('must be an IPv4 or IPv6 address or CIDR prefix');
    addr = ipaddr.parse(t);
    len = addr.kind() === 'ipv4' ? 32 : 128;
  }
  addr = unmapIpv4(addr);
  if (addr.kind() === 'ipv4' && len > 32) len -= 96;
  const network = networkAddress(addr, len);
  if (network.toString() !== addr.toString()) {
    throw new RangeError(`has host bits set; did you mean ${network.toString()}/${len}?`);
  }
  if (len === 0)
    return { cidr: addr.kind() === 'ipv4' ? '0.0.0.0/0' : '::/0', family: addr.kind(), any: true };
  // ipaddr.js also reads legacy IPv4 forms (octal `010.0.0.1` is 8.0.0.1, hex, fewer parts); a person writing
  // an address means four plain decimals, so any other IPv4 spelling is refused.
  const host = t.split('/')[0] ?? '';
  if (addr.kind() === 'ipv4' && !host.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(host)) {
    throw new RangeError(
      'must write its IPv4 address as four decimal numbers without leading zeros (a.b.c.d)',
    );
  }
  return { cidr: `${addr.toString()}/${len}`, family: addr.kind(), any: false };
}

/** Parses the caller's address from a socket or a forwarding header value (`1.2.3.4:5678`, `[::1]:80`). */
export function parseClientAddress(text: string): string | undefined {
  let t = text.trim();
  if (!t) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(t);
  if (bracketed?.[1]) t = bracketed[1];
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(t)) t = t.slice(0, t.lastIndexOf(':'));
  if (!ipaddr.isValid(t)) return undefined;
  return unmapIpv4(ipaddr.parse(t)).toString();
}

/** Whether an address (as `parseClientAddress` returns it) is a loopback address of this machine. */
export function isLoopbackAddress(ip: string): boolean {
  return ipaddr.isValid(ip) && unmapIpv4(ipaddr.parse(ip)).range() === 'loopback';
}

/**
 * The caller's address from an `X-Forwarded-For` chain, given how many trusted proxies precede the app's own front
 * end. Each proxy appends the address it received the connection from, so everything left of what trusted proxies
 * wrote is whatever the client chose to send: only the entry `trustedHops` places left of the last one is the
 * caller ("trusted proxy count", MDN: https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/X-Forwarded-For#selecting_an_ip_address).
 * App Service's front end always appends the address that connected to it (as `ip:port`;
 * https://github.com/sergiodxa/remix-utils/pull/496 shows the headers behind Front Door), so with no proxy in front
 * (`trustedHops` 0) that last entry is the caller. Undefined when the chain is shorter than the proxies configured,
 * or the entry is not an address: then nothing may be granted to "my address".
 */
export function forwardedClientAddress(
  xff: string | null | undefined,
  trustedHops: number,
): string | undefined {
  if (!xff) return undefined;
  const entries = xff.split(',');
  const entry = entries[entries.length - 1 - trustedHops];
  return entry === undefined ? undefined : parseClientAddress(entry);
}

/** Whether `inner` lies entirely inside `outer`. `*` is inside only `*`. */
export function prefixWithin(inner: Prefix, outer: Prefix): boolean {
  if (outer.any && outer.cidr === '*') return true;
  if (inner.cidr === '*') return false;
  if (inner.family !== outer.family) return false;
  const [iAddr, iLen] = ipaddr.parseCIDR(inner.cidr);
  const [oAddr, oLen] = ipaddr.parseCIDR(outer.cidr);
  return iLen >= oLen && iAddr.match(oAddr, oLen);
}

function unmapIpv4(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()
    ? (addr as ipaddr.IPv6).toIPv4Address()
    : addr;
}

function networkAddress(addr: ipaddr.IPv4 | ipaddr.IPv6, len: number): ipaddr.IPv4 | ipaddr.IPv6 {
  return addr.kind() === 'ipv4'
    ? ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${len}`)
    : ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${len}`);
}
