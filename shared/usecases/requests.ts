import { monotonicFactory } from 'ulid';
import { approvalsRequired, approverEntries, countingApprovals } from '../domain/approval';
import type { ApprovalDecision } from '../domain/approval';
import { AccessNotAllowed, FeatureUnavailable, InvalidRequest, RequestNotFound } from '../domain/errors';
import { formatDuration } from '../domain/duration';
import { checkStartAt } from '../domain/lifecycle';
import { mayRead } from '../domain/permissions';
import { decide, selectPolicy } from '../domain/policy';
import { parseRequestBody } from '../domain/requestInput';
import { scopesOf } from '../domain/resourceId';
import { auditActor } from '../domain/types';
import type { AccessRequest, GrantRule, Principal } from '../domain/types';
import { emitAll, signalsOfTransition } from '../domain/signals';
import type { Deps } from './deps';
import { writeAudited } from './auditOutbox';
import { canonicalVmId, checkGrantable } from './grantability';
import type { GrantabilityPorts } from './grantability';

/**
 * Request ids are ULIDs of the submission time: listing by id is listing newest first. Monotonic, so two requests of
 * one millisecond in one instance still sort in the order they came (a plain ULID orders them at random); a clock
 * that goes back starts afresh, so an id never names a time later than its submission by more than a millisecond.
 */
const nextRequestId = (() => {
  let next = monotonicFactory();
  let last = -Infinity;
  return (at: number): string => {
    if (at < last) next = monotonicFactory();
    last = at;
    return next(at);
  };
})();

/** What a submission needs. */
export type SubmitPorts = GrantabilityPorts &
  Pick<Deps, 'requests' | 'audit' | 'clock' | 'policies' | 'settings' | 'approvals' | 'queues' | 'signals'>;

/** What showing a request needs. */
export type RequestViewPorts = Pick<Deps, 'requests' | 'grants' | 'policies' | 'approvals'>;

/**
 * `POST /api/requests`: validate, check against the policy, record, audit, and hand to `evaluateRequest`.
 * Nothing is written unless the request is valid and allowed, and, under manual approval, approvers can be asked.
 */
export async function submitRequest(
  deps: SubmitPorts,
  caller: Principal,
  body: unknown,
  callerAddress: string | undefined,
): Promise<AccessRequest> {
  const ask = parseRequestBody(body);
  const startAt = checkStartAt(ask.startAt, deps.clock.now());
  if (ask.durationInSeconds > deps.settings.maxDurationInSeconds) {
    throw new InvalidRequest([
      {
        field: 'duration',
        reason: `must be at most ${formatDuration(deps.settings.maxDurationInSeconds)} (the system's limit)`,
      },
    ]);
  }
  // The VM is the one ARM returns, and the policy is chosen from ARM's id for it, not from the id as typed.
  const vm = await canonicalVmId(deps, ask.vmId);
  const vmId = vm.kind === 'found' ? vm.vmId : ask.vmId;
  const scopes = scopesOf(vmId);
  const policy = selectPolicy(scopes, await deps.policies.getForScopes(scopes));
  let decision;
  try {
    decision = decide(policy, { ...ask, vmId }, caller, callerAddress);
  } catch (err) {
    if (err instanceof AccessNotAllowed) {
      deps.log.warn('request.refused', { caller: caller.id, vm: vmId, reason: err.reason });
    }
    throw err;
  }
  // Approvers are asked through mailed links: with either switched off, say so now and store nothing, rather than
  // accept a request nobody would be asked about.
  const unavailable = deps.approvals.unavailableFeature;
  if (decision.approvalMode === 'manual' && unavailable) throw new FeatureUnavailable(unavailable);
  // Only now, for a caller the policy allows: the answer then reveals nothing they may not ask about.
  if (vm.kind === 'unusable') throw vm.error;
  await checkGrantable(deps, vmId, decision.sourcePrefix, vm.kind === 'found' ? vm.path : undefined);

  const now = deps.clock.now().toISOString();
  const request: AccessRequest = {
    id: nextRequestId(deps.clock.now().getTime()),
    requester: caller.name,
    requesterId: caller.id.toLowerCase(),
    vmId,
    ports: ask.ports,
    protocol: decision.protocol,
    sourcePrefix: decision.sourcePrefix,
    durationInSeconds: ask.durationInSeconds,
    justification: ask.justification,
    startAt,
    status: 'submitted',
    policyScope: decision.policyScope,
    approvalMode: decision.approvalMode,
    createdAt: now,
    updatedAt: now,
  };
  try {
    await writeAudited(deps, undefined, request, {
      ...auditActor(caller),
      action: 'request.submitted',
      requestId: request.id,
      vm: request.vmId,
      ports: request.ports,
      sourcePrefix: request.sourcePrefix,
      justification: request.justification,
      detail: `duration ${formatDuration(request.durationInSeconds)}${startAt ? `, from ${startAt}` : ''}, policy ${request.policyScope}`,
      clientAddress: callerAddress,
    });
  } catch (err) {
    // Stored with its event in the row, which the next step appends: the request is accepted all the same.
    if (!(await deps.requests.get(request.id).catch(() => undefined))) throw err;
    deps.log.error('request.audit-pending', { requestId: request.id, error: String(err) });
  }
  try {
    await deps.queues.enqueueEvaluation(request.id);
  } catch (err) {
    // The request is recorded and listed as open: the reconciler hands it on. Accepting it is honest.
    deps.log.error('request.enqueue-failed', { requestId: request.id, error: String(err) });
  }
  deps.log.info('request.submitted', { requestId: request.id, vm: request.vmId, ports: request.ports });
  emitAll(deps.signals, signalsOfTransition(undefined, request, caller.name));
  return request;
}

/**
 * A request with the rules written for it, as `GET /api/requests/{id}` shows it. A rule's destination addresses
 * are the VM's private addresses it opens: what to connect to.
 */
export interface RequestView extends AccessRequest {
  rules: Array<
    Pick<GrantRule, 'nsgId' | 'ruleName' | 'priority' | 'state' | 'destinationAddresses'> &
      Partial<Pick<GrantRule, 'effective' | 'shadowedBy' | 'closeBlocked'>>
  >;
  /** Under a policy that needs approval: who may decide, how many must, by when, and what each decided. */
  approval?: ApprovalSummary;
}

/** Where the approval of a request stands, as its requester may read it. */
interface ApprovalSummary {
  /** The policy's approver entries (`user:…`, `group:…`) as the policy names them now. */
  approvers: string[];
  required: number;
  /** Approvals that count: distinct current approvers, not the requester. */
  approvals: number;
  deadline?: string;
  /** Every decision recorded, oldest first, with the approver's comment: a denial's reason, an approval's note. */
  decisions: Array<Pick<ApprovalDecision, 'approver' | 'decision' | 'comment' | 'decidedAt'>>;
}

/** `GET /api/requests/{id}`: the requester sees their own requests; others get the same 404 as a missing one. */
export async function getRequest(
  deps: RequestViewPorts,
  caller: Principal,
  id: string,
): Promise<RequestView> {
  const found = await deps.requests.get(id);
  if (!found || !mayRead(caller, found.value)) throw new RequestNotFound(id);
  return viewOf(deps, found.value);
}

/** The request as the API shows it, with its rules. */
export async function viewOf(deps: RequestViewPorts, request: AccessRequest): Promise<RequestView> {
  const rules = (await deps.grants.list(request.id)).map(
    ({ nsgId, ruleName, priority, state, destinationAddresses, effective, shadowedBy, closeBlocked }) => ({
      nsgId,
      ruleName,
      priority,
      state,
      destinationAddresses,
      ...(effective === undefined ? {} : { effective }),
      ...(shadowedBy === undefined ? {} : { shadowedBy }),
      ...(closeBlocked === undefined ? {} : { closeBlocked }),
    }),
  );
  const approval = await approvalSummary(deps, request);
  return approval ? { ...request, rules, approval } : { ...request, rules };
}

async function approvalSummary(
  deps: RequestViewPorts,
  request: AccessRequest,
): Promise<ApprovalSummary | undefined> {
  if (request.approvalMode !== 'manual') return undefined;
  const [policy] = await deps.policies.getForScopes([request.policyScope]);
  const decisions = await deps.approvals.decisions.list(request.id);
  return {
    approvers: policy ? approverEntries(policy).map((e) => e.entry) : [],
    required: policy ? approvalsRequired(policy) : 0,
    approvals: countingApprovals(decisions, policy, request.requester).length,
    deadline: request.approvalDeadline,
    decisions: [...decisions]
      .sort((a, b) => a.decidedAt.localeCompare(b.decidedAt))
      .map(({ approver, decision, comment, decidedAt }) => ({
        approver,
        decision,
        ...(comment ? { comment } : {}),
        decidedAt,
      })),
  };
}
