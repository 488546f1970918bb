import { formatDuration } from './duration';
import { AccessNotAllowed, InvalidRequest } from './errors';
import type { FieldProblem } from './errors';
import { parsePrefix, prefixWithin } from './network';
import type { Policy, Principal, Protocol } from './types';

/** What the caller asked for, after syntax checks. */
export interface AccessAsk {
  vmId: string;
  ports: number[];
  protocol?: Protocol;
  /** As given; undefined means "my address". */
  sourcePrefix?: string;
  durationInSeconds: number;
  justification?: string;
  /** When access should begin (ISO-8601, as given); undefined means as soon as it is approved. */
  startAt?: string;
}

/** What the policy grants: the ask made concrete. */
export interface PolicyDecision {
  policyScope: string;
  protocol: Protocol;
  sourcePrefix: string;
  approvalMode: Policy['approval']['mode'];
}

/** Picks the most specific policy among those found for the VM's scopes (VM, then group, then subscription). */
export function selectPolicy(scopes: string[], found: Policy[]): Policy | undefined {
  for (const scope of scopes) {
    const p = found.find((f) => f.scope === scope);
    if (p) return p;
  }
  return undefined;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a GUID (an Entra object, tenant or client id). */
export const isGuid = (s: string): boolean => GUID.test(s);

/**
 * Whether one policy entry names the principal:
 * - `*`: any signed-in person (never an app: an automation identity must be named);
 * - `user:<object id>`: that person, by object id; `user:<UPN>` (or a bare UPN): the member account whose `upn`
 *   claim it is. A guest's UPN, its `email` or `preferred_username` never match, so a guest whose mail address
 *   equals a member's UPN is not that member;
 * - `group:<object id>`: a person whose token lists that group;
 * - `app:<client id>`: the service principal of that app registration, calling with an app-only token.
 */
export function principalMatchesEntry(principal: Principal, raw: string): boolean {
  const entry = raw.trim().toLowerCase();
  if (entry.startsWith('app:'))
    return principal.kind === 'app' && principal.appId?.toLowerCase() === entry.slice(4);
  if (principal.kind !== 'user') return false;
  if (entry === '*') return true;
  if (entry.startsWith('group:')) return principal.groups.some((g) => g.toLowerCase() === entry.slice(6));
  const user = entry.startsWith('user:') ? entry.slice(5) : entry;
  if (!user) return false;
  if (isGuid(user)) return principal.objectId?.toLowerCase() === user;
  return principal.upn?.toLowerCase() === user;
}

/** Whether the principal is named by one of the entries (`*`, `user:…`, `group:…`, `app:…`). */
export function principalMatches(principal: Principal, entries: readonly string[]): boolean {
  return entries.some((e) => principalMatchesEntry(principal, e));
}

/**
 * Checks an ask against the policy that covers the VM. Throws `AccessNotAllowed` (the caller may not use this
 * VM at all, or asks for more than the policy allows) or `InvalidRequest` (justification rules).
 */
export function decide(
  policy: Policy | undefined,
  ask: AccessAsk,
  caller: Principal,
  callerAddress: string | undefined,
): PolicyDecision {
  if (!policy || !principalMatches(caller, policy.requesters)) {
    // Same answer whether the VM is uncovered or the caller is not a requester: existence must not leak.
    throw new AccessNotAllowed('no policy allows this caller to request access to this VM', false);
  }
  const protocol = ask.protocol ?? 'Tcp';
  for (const port of ask.ports) {
    const allowed = policy.ports.find(
      (p) => p.port === port && (p.protocol === '*' || p.protocol === protocol),
    );
    if (!allowed) {
      throw new AccessNotAllowed(
        `port ${port}/${protocol} is not allowed by the policy; it allows ${allowedPorts(policy)}`,
        true,
      );
    }
    if (ask.durationInSeconds > allowed.maxDurationInSeconds) {
      throw new AccessNotAllowed(
        `${formatDuration(ask.durationInSeconds)} is longer than the policy allows for port ${port}: at most ${formatDuration(allowed.maxDurationInSeconds)}`,
        true,
      );
    }
  }
  const problems: FieldProblem[] = [];
  if (policy.justification.required && !ask.justification?.trim()) {
    problems.push({ field: 'justification', reason: 'is required by the policy for this VM' });
  }
  if (policy.justification.pattern && ask.justification !== undefined) {
    if (!new RegExp(policy.justification.pattern).test(ask.justification)) {
      problems.push({ field: 'justification', reason: `must match ${policy.justification.pattern}` });
    }
  }
  if (problems.length) throw new InvalidRequest(problems);

  const sourcePrefix = resolveSource(policy, ask.sourcePrefix, callerAddress);
  return { policyScope: policy.scope, protocol, sourcePrefix, approvalMode: policy.approval.mode };
}

/** The ports a policy allows and for how long, as a refusal names them: `22/Tcp up to 3h, 3389/Tcp up to 1h`. */
function allowedPorts(policy: Pick<Policy, 'ports'>): string {
  return policy.ports
    .map(
      (p) =>
        `${p.port}/${p.protocol === '*' ? 'any protocol' : p.protocol} up to ${formatDuration(p.maxDurationInSeconds)}`,
    )
    .join(', ');
}

function resolveSource(policy: Policy, asked: string | undefined, callerAddress: string | undefined): string {
  let prefix;
  if (asked === undefined) {
    if (!callerAddress) {
      throw new InvalidRequest([
        { field: 'sourcePrefix', reason: 'is required: the caller address could not be determined' },
      ]);
    }
    prefix = parsePrefix(callerAddress);
  } else {
    try {
      prefix = parsePrefix(asked);
    } catch (e) {
      throw new InvalidRequest([{ field: 'sourcePrefix', reason: (e as Error).message }]);
    }
  }
  const mine = callerAddress ? parsePrefix(callerAddress) : undefined;
  const ok = policy.allowedSourcePrefixes.some((entry) => {
    if (entry.toLowerCase() === 'my-ip') return mine !== undefined && mine.cidr === prefix.cidr;
    // A broad source (`*`, 0.0.0.0/0, ::/0) is allowed only where the policy lists exactly that.
    if (prefix.any) return parsePrefix(entry).cidr === prefix.cidr || entry.trim() === '*';
    return prefixWithin(prefix, parsePrefix(entry));
  });
  if (!ok)
    throw new AccessNotAllowed(
      `source ${prefix.cidr} is not within the policy's allowed source prefixes: ${policy.allowedSourcePrefixes.join(', ')}`,
      true,
    );
  return prefix.cidr;
}
