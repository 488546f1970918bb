/** What a person could look at in the sandbox: the NSG rules, the audit trail, scheduled messages, a request. */
import assert from 'node:assert/strict';
import { odata } from '@azure/data-tables';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { services } from '../../shared/composition';
import type { Policy } from '../../shared/domain/types';
import { TABLES } from '../../shared/names';
import { api, waitFor } from './sandbox';

/** The JIT rule of one request in one NSG, as the ARM emulator holds it. */
export function ruleOf(sandbox: Sandbox, nsgId: string, requestId: string) {
  return sandbox.arm.getNsg(nsgId)?.securityRules.find((r) => r.name === `jit-${requestId.toLowerCase()}`);
}

/** Whether the request's rule is present in every one of the NSGs. */
export function rulesInAll(sandbox: Sandbox, nsgIds: readonly string[], requestId: string): boolean {
  return nsgIds.every((n) => ruleOf(sandbox, n, requestId) !== undefined);
}

/** Whether the request's rule is absent from every one of the NSGs. */
export function rulesInNone(sandbox: Sandbox, nsgIds: readonly string[], requestId: string): boolean {
  return nsgIds.every((n) => ruleOf(sandbox, n, requestId) === undefined);
}

/**
 * The request's state changes in the audit trail, oldest first (from its index partition, whose RowKeys sort
 * newest first). The per-rule and per-message detail events (`grant.rule-*`, `grant.expiry-*`, `reconcile.*`)
 * are left out: these tests are about the lifecycle, docs/audit.md about the detail.
 */
export async function auditActions(sandbox: Sandbox, requestId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of sandbox.table(TABLES.audit).listEntities<{ action: string }>({
    queryOptions: { filter: odata`PartitionKey eq ${`request|${requestId}`}` },
  })) {
    if (!/^(grant\.rule-|grant\.expiry-|reconcile\.)/.test(e.action)) out.push(e.action);
  }
  return out.reverse();
}

/**
 * Asserts the request's state changes, once as many as expected are in. Each event is appended just after the
 * state change it records, so a status can read `expired` a moment before `grant.expired` is in the trail.
 */
export async function assertAudited(sandbox: Sandbox, requestId: string, expected: string[]): Promise<void> {
  let seen: string[] = [];
  await waitFor(
    `the audit trail of ${requestId} to hold ${expected.length} state changes`,
    async () => (seen = await auditActions(sandbox, requestId)).length >= expected.length,
    10_000,
  ).catch(() => undefined); // the comparison below says what is missing
  assert.deepEqual(seen, expected);
}

/** Scheduled Service Bus messages about one request on a queue. */
/**
 * When the sandbox enqueues a grant's expiry message: `JIT_CLOSE_LEAD` (PT10S, the default the sandbox keeps) ahead
 * of its expiry, never more than a tenth of the grant (docs/operations.md, "Closing ahead of expiresAt").
 */
export function closingBegins(r: { expiresAt?: string; durationInSeconds: number }): number {
  assert.ok(r.expiresAt, 'the grant has an expiry');
  return Date.parse(r.expiresAt) - Math.min(10, r.durationInSeconds / 10) * 1000;
}

export function scheduledFor(sandbox: Sandbox, queue: string, requestId: string) {
  return sandbox.serviceBus
    .listScheduled(queue)
    .filter((m) => (m.body as { requestId?: string }).requestId === requestId);
}

export interface RequestBody {
  id: string;
  status: string;
  requester: string;
  vmId: string;
  ports: number[];
  durationInSeconds: number;
  createdAt: string;
  startAt?: string;
  approvedAt?: string;
  activatedAt?: string;
  expiresAt?: string;
  endedAt?: string;
  revokedBy?: string;
  statusReason?: string;
  expirySequenceNumber?: string;
  startSequenceNumber?: string;
  rules: Array<{ nsgId: string; ruleName: string; state: string; destinationAddresses: string[] }>;
}

/** The request as its requester sees it through the API. */
export async function view(sandbox: Sandbox, id: string, user = 'alice@example.com'): Promise<RequestBody> {
  const res = await api(sandbox, 'GET', `requests/${id}`, undefined, user);
  if (res.status !== 200) throw new Error(`GET requests/${id} answered ${res.status}`);
  return res.body as RequestBody;
}

/** The demo resource group's policy as the sandbox stored it: a base for a test's own VM-level policy. */
export async function demoGroupPolicy(): Promise<Policy> {
  const scope = `/subscriptions/${DEMO.subscriptionId}/resourcegroups/${DEMO.resourceGroup}`.toLowerCase();
  const [policy] = await services().deps.policies.getForScopes([scope]);
  if (!policy) throw new Error(`the sandbox has no policy for ${scope}`);
  return policy;
}
