/** A request described for people: the same facts, in the same words, in every mail and on the approval page. */
import { formatDuration } from '../domain/duration';
import { parseResourceId } from '../domain/resourceId';
import type { AccessRequest } from '../domain/types';

const WELL_KNOWN: Record<number, string> = {
  22: 'SSH',
  3389: 'RDP',
  5985: 'WinRM',
  5986: 'WinRM over HTTPS',
};

export function vmName(vmId: string): string {
  try {
    return parseResourceId(vmId).name;
  } catch {
    return vmId;
  }
}

export function describeVm(vmId: string): string {
  try {
    const r = parseResourceId(vmId);
    return `${r.name} (resource group ${r.resourceGroup}, subscription ${r.subscriptionId})`;
  } catch {
    return vmId;
  }
}

export function describePorts(request: Pick<AccessRequest, 'ports' | 'protocol'>): string {
  const proto = request.protocol === '*' ? 'any protocol' : request.protocol.toUpperCase();
  return request.ports
    .map((p) => (WELL_KNOWN[p] ? `${p}/${proto} (${WELL_KNOWN[p]})` : `${p}/${proto}`))
    .join(', ');
}

/** `2025-01-02T03:04:05.000Z` -> `2025-01-02 03:04:05 UTC`: unambiguous for approvers in any time zone. */
export function describeTime(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/**
 * What is asked, as label/value pairs (plain strings: the renderers escape them): who, which VM, which ports, from
 * where, for how long, and why. The approval page puts exactly these on a phone's first screen.
 */
export function askFacts(r: AccessRequest): Array<[string, string]> {
  return [
    ['Requested by', r.requester],
    ['VM', describeVm(r.vmId)],
    ['Ports', describePorts(r)],
    ['From address', r.sourcePrefix === '*' ? 'any address' : r.sourcePrefix],
    ['For', formatDuration(r.durationInSeconds)],
    ['Justification', r.justification?.trim() ? r.justification : '(none given)'],
  ];
}

/** The request's record: when it was asked, the deadline to decide, its id. */
export function recordFacts(r: AccessRequest): Array<[string, string]> {
  const facts: Array<[string, string]> = [['Asked at', describeTime(r.createdAt)]];
  if (r.startAt) facts.push(['Starts at', describeTime(r.startAt)]);
  if (r.approvalDeadline) facts.push(['Decide by', describeTime(r.approvalDeadline)]);
  facts.push(['Request id', r.id]);
  return facts;
}

/** The facts an approver needs, as label/value pairs: every mail shows them in this order. */
export function requestFacts(r: AccessRequest): Array<[string, string]> {
  return [...askFacts(r), ...recordFacts(r)];
}
