import type { RequestView } from './types';
import { addressesOf } from './render';

/**
 * How to connect once access is live, per port and address: the ssh or RDP line people would type next.
 * Ports without a well-known client get `address:port`.
 */
export function connectHints(view: RequestView, login: string): string[] {
  const hints: string[] = [];
  for (const address of addressesOf(view)) {
    const host = address.includes(':') ? `[${address}]` : address;
    for (const port of view.ports) {
      if (port === 22) hints.push(`ssh ${login}@${address}`);
      else if (port === 3389) hints.push(`mstsc /v:${host}`);
      else if (port === 5985 || port === 5986)
        hints.push(`Enter-PSSession -ComputerName ${address}${port === 5986 ? ' -UseSSL' : ''}`);
      else hints.push(`${host}:${port}`);
    }
  }
  return hints;
}
