/** Helpers for tests that look at NSGs, grants and the audit trail in a running sandbox. */
import { odata } from '@azure/data-tables';
import type { ArmSecurityRule } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { services } from '../../shared/composition';
import { TABLES } from '../../shared/names';
import { baselineEnforcement } from '../../shared/usecases/baseline';
import { networkReach } from '../../shared/usecases/reach';
import type { Deps, Logger } from '../../shared/usecases/deps';
import { api, waitFor } from './sandbox';
import { isDayPartition } from '../../shared/domain/auditChain';

/** Every rule in an NSG whose name starts with `jit-` (grant rules and baseline rules). */
export function jitRules(sandbox: Sandbox, nsgId: string): ArmSecurityRule[] {
  return (sandbox.arm.getNsg(nsgId)?.securityRules ?? []).filter((r) => r.name.startsWith('jit-'));
}

/** The rule of one grant in an NSG, if there. */
export function grantRule(sandbox: Sandbox, nsgId: string, requestId: string): ArmSecurityRule | undefined {
  return sandbox.arm.getNsg(nsgId)?.securityRules.find((r) => r.name === `jit-${requestId.toLowerCase()}`);
}

/** Rules of grants (not baselines) in any NSG of the emulator, with the NSG they are in. */
export function allGrantRules(sandbox: Sandbox): Array<{ nsgId: string; name: string; priority: number }> {
  return sandbox.arm
    .listNsgs()
    .flatMap((n) =>
      n.securityRules
        .filter((r) => /^jit-[0-9a-z]{26}$/.test(r.name))
        .map((r) => ({ nsgId: n.id, name: r.name, priority: r.properties.priority })),
    );
}

export interface AuditRow {
  rowKey: string;
  actor: string;
  action: string;
  requestId?: string;
  vm?: string;
  detail?: string;
}

/**
 * Audit events, oldest first, optionally only those matching an OData filter. Only the day partitions: the
 * index partitions hold copies of the same events, and each day has a head row.
 */
export async function auditEvents(sandbox: Sandbox, filter?: string): Promise<AuditRow[]> {
  const out: Array<AuditRow & { time: string; seq: number }> = [];
  const rows = sandbox
    .table(TABLES.audit)
    .listEntities<AuditRow & { time: string; seq: number }>(filter ? { queryOptions: { filter } } : {});
  for await (const e of rows) {
    if (!isDayPartition(e.partitionKey as string) || !e.action) continue;
    out.push({ ...e, rowKey: e.rowKey });
  }
  return out.sort((a, b) => a.time.localeCompare(b.time) || a.seq - b.seq);
}

/** A request's state changes, oldest first (the per-rule and per-message detail events left out). */
export async function auditActions(sandbox: Sandbox, requestId: string): Promise<string[]> {
  return (await auditEvents(sandbox, odata`requestId eq ${requestId}`))
    .map((e) => e.action)
    .filter((a) => !/^(grant\.rule-|grant\.expiry-|reconcile\.)/.test(a));
}

export interface RequestStatus {
  id: string;
  status: string;
  statusReason?: string;
  durationInSeconds: number;
  expiresAt?: string;
  rules: Array<{ nsgId: string; ruleName: string; priority: number; state: string }>;
}

export async function requestStatus(host: { baseUrl: string }, id: string): Promise<RequestStatus> {
  return (await api(host, 'GET', `requests/${id}`)).body as RequestStatus;
}

/** Waits for a request to reach one of `statuses` and returns it as the API shows it. */
export async function requestIn(
  host: { baseUrl: string },
  id: string,
  statuses: readonly string[],
  timeoutInMs = 60_000,
  intervalInMs = 300,
): Promise<RequestStatus> {
  return waitFor(
    `request ${id} to be ${statuses.join(' or ')}`,
    async () => {
      const s = await requestStatus(host, id);
      return statuses.includes(s.status) ? s : undefined;
    },
    timeoutInMs,
    intervalInMs,
  );
}

/** Asks for access and returns the request id (fails the test on anything but 202). */
export async function ask(
  host: { baseUrl: string },
  body: { vm: string; sourcePrefix: string; duration: string; ports?: number[] },
): Promise<string> {
  const res = await api(host, 'POST', 'requests', { ports: [22], ...body });
  if (res.status !== 202)
    throw new Error(`POST /requests answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The sandbox's use-case dependencies, as another instance of the app would have them, with a quiet log. */
export function appDeps(log: Logger = quiet): Deps {
  const deps: Deps = { ...services().deps, log };
  deps.enforcement = baselineEnforcement(() => deps);
  deps.reach = networkReach(() => deps);
  return deps;
}

/** A logger that keeps what it is told, for asserting on log lines. */
export function recordingLogger(): Logger & {
  lines: Array<{ level: string; event: string; fields?: object }>;
} {
  const lines: Array<{ level: string; event: string; fields?: object }> = [];
  return {
    lines,
    info: (event, fields) => lines.push({ level: 'info', event, fields }),
    warn: (event, fields) => lines.push({ level: 'warn', event, fields }),
    error: (event, fields) => lines.push({ level: 'error', event, fields }),
  };
}
