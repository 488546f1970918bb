import type { AuditAction } from '../domain/auditActions';
import { z } from 'zod';
import { AccessNotAllowed, InvalidRequest, PolicyNotFound } from '../domain/errors';
import { diffPolicies, isEmptyDiff } from '../domain/policyDiff';
import type { PolicyChange, PolicyDiff } from '../domain/policyDiff';
import { parsePolicyDocument, toPolicyDocument, toPolicyEntry } from '../domain/policyDocument';
import type { PolicyDocument, PolicyEntry } from '../domain/policyDocument';
import { explainPolicy } from '../domain/policyExplain';
import type { AccessExplanation } from '../domain/policyExplain';
import type { PolicyWrite } from '../domain/ports';
import { parseVmId, scopesOf } from '../domain/resourceId';
import { selectPolicy } from '../domain/policy';
import { toFieldProblems } from '../domain/requestInput';
import { ROLES, hasRole, requireRole } from '../domain/roles';
import { auditActor } from '../domain/types';
import type { Policy, Principal } from '../domain/types';
import type { Deps } from './deps';
import { NO_SIGN_IN_FOR_APPROVERS } from './serving';

/** What reading and changing policies needs. */
export type PolicyPorts = Pick<
  Deps,
  'policies' | 'audit' | 'clock' | 'log' | 'settings' | 'approvals' | 'reach' | 'enforcement'
>;

/** A policy document as received: its text (YAML or JSON) and the name problems refer to it by. */
export interface PolicyDocumentInput {
  text: string;
  source: string;
}

export interface PolicyChangeOptions {
  /** Compute and return the diff, change nothing. */
  dryRun?: boolean;
  clientAddress?: string;
}

/** What a change of the set did (or, in a dry run, would do). */
export interface PolicyChangeResult extends PolicyDiff {
  dryRun: boolean;
  /** Things that went wrong after the change was stored (the enforcement hook), for the administrator. */
  warnings: string[];
}

/**
 * `PUT /api/policies`: the document replaces the whole set — policies it lists are added or changed, stored ones
 * it does not list are removed. Validated in full before anything is written; written as one conditional change
 * of the set; one audit event per policy changed. Applying the same document again finds nothing to do.
 */
export async function applyPolicies(
  deps: PolicyPorts,
  caller: Principal,
  input: PolicyDocumentInput,
  options: PolicyChangeOptions = {},
): Promise<PolicyChangeResult> {
  requireRole(caller, ROLES.admin);
  const desired = parsePolicyDocument(input.text, {
    source: input.source,
    maxDurationInSeconds: deps.settings.maxDurationInSeconds,
    ...(deps.approvals.signInAvailable === false
      ? { manualApprovalUnavailable: NO_SIGN_IN_FOR_APPROVERS }
      : {}),
  });
  const set = await deps.policies.getSet();
  const diff = diffPolicies(set.policies, desired);
  const dryRun = options.dryRun ?? false;
  if (isEmptyDiff(diff)) return { ...diff, dryRun, warnings: [] };
  if (dryRun) return { ...diff, dryRun, warnings: await reachWarnings(deps, diff, byScope(desired)) };

  const after = byScope(desired);
  const writes: PolicyWrite[] = [
    ...[...diff.added, ...diff.changed].map((e): PolicyWrite => ({
      kind: 'put',
      policy: after.get(e.scope)!,
    })),
    ...diff.removed.map((e): PolicyWrite => ({ kind: 'delete', scope: e.scope })),
  ];
  return commit(deps, caller, diff, writes, set.version, byScope(set.policies), after, options);
}

/** `DELETE /api/policies?scope=`: removes one policy. Live grants under it run to their expiry. */
export async function deletePolicy(
  deps: PolicyPorts,
  caller: Principal,
  scope: string,
  options: PolicyChangeOptions = {},
): Promise<PolicyChangeResult> {
  requireRole(caller, ROLES.admin);
  const wanted = normalizeScope(scope);
  const set = await deps.policies.getSet();
  const policy = set.policies.find((p) => p.scope === wanted);
  if (!policy) throw new PolicyNotFound(wanted);
  const diff: PolicyDiff = {
    added: [],
    changed: [],
    removed: [toPolicyEntry(policy)],
    unchanged: set.policies.length - 1,
  };
  if (options.dryRun) return { ...diff, dryRun: true, warnings: [] };
  const before = byScope(set.policies);
  return commit(
    deps,
    caller,
    diff,
    [{ kind: 'delete', scope: wanted }],
    set.version,
    before,
    new Map(),
    options,
  );
}

/** `GET /api/policies`: the stored set as a document that `PUT` takes back unchanged. */
export async function getPolicies(deps: PolicyPorts, caller: Principal): Promise<PolicyDocument> {
  requireRole(caller, ROLES.admin);
  return toPolicyDocument((await deps.policies.getSet()).policies);
}

/** `GET /api/policies?scope=`: one policy, in document form. */
export async function getPolicy(deps: PolicyPorts, caller: Principal, scope: string): Promise<PolicyEntry> {
  requireRole(caller, ROLES.admin);
  const wanted = normalizeScope(scope);
  const [policy] = await deps.policies.getForScopes([wanted]);
  if (!policy) throw new PolicyNotFound(wanted);
  return toPolicyEntry(policy);
}

const explainQuery = z.strictObject({
  vm: z.string().superRefine((v, ctx) => {
    try {
      parseVmId(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }),
  port: z
    .string()
    .regex(/^\d{1,5}$/, 'must be a port number from 1 to 65535')
    .transform(Number)
    .refine((p) => p >= 1 && p <= 65535, 'must be a port number from 1 to 65535')
    .optional(),
  protocol: z.enum(['Tcp', 'Udp']).optional(),
});

/**
 * `GET /api/policies/explain?vm=&port=&protocol=`: which policy decides for a VM and why. Administrators may ask
 * about any VM; anyone else only about VMs whose deciding policy names them as a requester — others get the
 * same refusal as a request would, so the answer does not reveal which VMs are covered.
 */
export async function explainAccess(
  deps: PolicyPorts,
  caller: Principal,
  query: Record<string, string | undefined>,
): Promise<AccessExplanation> {
  const parsed = explainQuery.safeParse(query);
  if (!parsed.success) throw new InvalidRequest(toFieldProblems(parsed.error));
  const { vm, port, protocol } = parsed.data;
  const scopes = scopesOf(vm);
  const found = await deps.policies.getForScopes(scopes);
  const explanation = explainPolicy(
    vm.trim(),
    scopes,
    found,
    caller,
    port === undefined ? undefined : { port, protocol: protocol ?? 'Tcp' },
  );
  if (!hasRole(caller, ROLES.admin) && !explanation.callerIsRequester) {
    throw new AccessNotAllowed('no policy allows this caller to request access to this VM', false);
  }
  // For administrators only: the warnings name NSGs and scopes a requester has no need to see.
  const policy = selectPolicy(scopes, found);
  if (policy && hasRole(caller, ROLES.admin)) {
    try {
      const warnings = await deps.reach.vm(vm.trim(), policy);
      if (warnings.length) explanation.warnings = warnings;
    } catch (err) {
      explanation.warnings = [`could not check the VM's network: ${(err as Error).message}`];
    }
  }
  return explanation;
}

async function commit(
  deps: PolicyPorts,
  caller: Principal,
  diff: PolicyDiff,
  writes: PolicyWrite[],
  version: string | undefined,
  before: Map<string, Policy>,
  after: Map<string, Policy>,
  options: PolicyChangeOptions,
): Promise<PolicyChangeResult> {
  await deps.policies.applyChanges(writes, version);
  const audit = (action: AuditAction, scope: string, detail: object) =>
    deps.audit.append({
      ...auditActor(caller),
      action,
      detail: JSON.stringify({ scope, ...detail }),
      clientAddress: options.clientAddress,
    });
  for (const e of diff.added) await audit('policy.added', e.scope, { before: null, after: e });
  for (const c of diff.changed) {
    await audit('policy.changed', c.scope, {
      fields: c.fields.map((f) => f.field),
      before: c.before,
      after: c.after,
    });
  }
  for (const e of diff.removed) await audit('policy.removed', e.scope, { before: e, after: null });
  deps.log.info('policy.set-changed', {
    ...auditActor(caller),
    added: diff.added.length,
    changed: diff.changed.length,
    removed: diff.removed.length,
  });
  const warnings = [
    ...(await syncEnforcement(deps, diff, before, after)),
    ...(await reachWarnings(deps, diff, after)),
  ];
  return { ...diff, dryRun: false, warnings };
}

/**
 * Where the deployment cannot read or write the network of VMs that added or changed policies cover (a VNet or NSG
 * in a hub resource group its role does not reach), one warning each: found now rather than at someone's request.
 */
async function reachWarnings(
  deps: PolicyPorts,
  diff: PolicyDiff,
  after: Map<string, Policy>,
): Promise<string[]> {
  const warnings: string[] = [];
  for (const e of [...diff.added, ...diff.changed]) {
    const policy = after.get(e.scope);
    if (!policy) continue;
    try {
      warnings.push(...(await deps.reach.policy(policy)));
    } catch (err) {
      warnings.push(`${policy.scope}: could not check the network of its VMs: ${(err as Error).message}`);
    }
  }
  return warnings;
}

/**
 * Calls the enforcement hook for each policy whose baseline deny must change: `sync` where a policy enforces
 * now and did not, or changed its ports while enforcing; `remove` where it stops (turned off, or removed).
 * The change is already stored, so a failing hook is reported, not thrown: the set stays as applied.
 */
async function syncEnforcement(
  deps: PolicyPorts,
  diff: PolicyDiff,
  before: Map<string, Policy>,
  after: Map<string, Policy>,
): Promise<string[]> {
  const hook = deps.enforcement;
  const calls: Array<['sync' | 'remove', Policy]> = [];
  for (const e of diff.added) {
    const p = after.get(e.scope)!;
    if (p.enforce) calls.push(['sync', p]);
  }
  for (const c of diff.changed) {
    const [b, a] = [before.get(c.scope)!, after.get(c.scope)!];
    if (a.enforce && (!b.enforce || portsChanged(c))) calls.push(['sync', a]);
    else if (b.enforce && !a.enforce) calls.push(['remove', b]);
  }
  for (const e of diff.removed) {
    const p = before.get(e.scope)!;
    if (p.enforce) calls.push(['remove', p]);
  }
  const warnings: string[] = [];
  for (const [op, policy] of calls) {
    try {
      await hook[op](policy);
    } catch (err) {
      const message = (err as Error).message;
      deps.log.error('policy.enforcement-failed', { scope: policy.scope, op, error: message });
      warnings.push(
        `${op === 'sync' ? 'putting the baseline deny in place' : 'lifting the baseline deny'} for ${policy.scope} failed: ${message}`,
      );
    }
  }
  return warnings;
}

const portsChanged = (c: PolicyChange) => c.fields.some((f) => f.field === 'ports');

const byScope = (policies: Policy[]) => new Map(policies.map((p) => [p.scope, p]));

/** Scopes are stored lower-cased; a query may write them as ARM does. */
function normalizeScope(scope: string): string {
  const s = scope.trim().toLowerCase();
  if (!s) throw new InvalidRequest([{ field: 'scope', reason: 'is required' }]);
  return s;
}
