/**
 * One JIT deployment in memory: every port of test/support/memory.ts wired as the composition root wires the real
 * adapters (the request store behind the audit outbox, baseline enforcement and the reach check over the same
 * dependencies, requester mail through the mail notifier), and the hops the Functions host makes between use cases
 * (queues, scheduled messages) run on demand. A unit test of a use case sets the world up, acts, and looks at what
 * a person would see: the request, the NSG's rules, the audit trail, the messages due, the mail.
 */
import { JoseApprovalTokens } from '../../shared/adapters/approvalTokens';
import type { NotifyTarget } from '../../shared/domain/notifications';
import type { AccessRequest, Policy, Principal, VmNetworkPath } from '../../shared/domain/types';
import { expireApproval } from '../../shared/usecases/approvals';
import { AuditedRequests } from '../../shared/usecases/auditOutbox';
import { baselineEnforcement } from '../../shared/usecases/baseline';
import type { ApprovalServices, Deps, GrantSettings } from '../../shared/usecases/deps';
import { applyGrant } from '../../shared/usecases/applying';
import { evaluateRequest } from '../../shared/usecases/evaluation';
import { expireGrant } from '../../shared/usecases/expiry';
import { startScheduledRequest } from '../../shared/usecases/lifecycle';
import { MailNotifier } from '../../shared/usecases/notify';
import { networkReach } from '../../shared/usecases/reach';
import { submitRequest } from '../../shared/usecases/requests';
import type {
  ApprovalDeadlineMessage,
  ExpiryMessage,
  StartMessage,
} from '../../shared/domain/scheduledMessages';
import { deliveryOf } from '../../shared/views/chatCards';
import { approverMail, requesterMail, settledMail } from '../../shared/views/mail';
import { CALLER_ADDRESS, aPolicy, aRequestBody, aVm, resourceGroupOf } from './builders';
import type { VmOptions } from './builders';
import {
  MemoryAnchors,
  MemoryAudit,
  MemoryClock,
  MemoryDecisions,
  MemoryGrants,
  MemoryLog,
  MemoryMailer,
  MemoryNetwork,
  MemoryNotificationQueue,
  MemoryNsgLocks,
  MemoryNsgRegistry,
  MemoryPolicies,
  MemoryRequests,
  MemoryRunLeases,
  MemoryScheduledMessages,
  MemorySignals,
  MemoryWebhooks,
  MemoryWorkQueues,
  signingKey,
} from './memory';

export const PUBLIC_BASE_URL = 'https://jit.example.com';

/** The settings of a deployment with the defaults of shared/config.ts, and ARM back-off short enough for tests. */
export const TEST_SETTINGS: GrantSettings = {
  priorityBand: { min: 1000, max: 1999 },
  baselineBand: { min: 2000, max: 2999 },
  maxDurationInSeconds: 8 * 3600,
  expiryGraceInSeconds: 120,
  closeLeadInSeconds: 10,
  maxArmAttempts: 3,
  armBackoffInMs: 1,
  reconcileMaxArmCalls: 2000,
};

export interface WorldOptions {
  /** When the clock starts (ISO time). */
  start?: string;
  settings?: Partial<GrantSettings>;
  approvals?: Partial<ApprovalServices>;
  /** Chat and webhook targets; none by default. */
  targets?: NotifyTarget[];
}

export type World = ReturnType<typeof memoryWorld>;

export function memoryWorld(o: WorldOptions = {}) {
  const clock = new MemoryClock(o.start);
  const requests = new MemoryRequests();
  const policies = new MemoryPolicies();
  const grants = new MemoryGrants();
  const audit = new MemoryAudit(clock);
  const anchors = new MemoryAnchors();
  const queues = new MemoryWorkQueues();
  const scheduled = new MemoryScheduledMessages();
  const network = new MemoryNetwork();
  const nsgs = new MemoryNsgRegistry();
  const locks = new MemoryNsgLocks();
  const leases = new MemoryRunLeases();
  const mail = new MemoryMailer();
  const notifications = new MemoryNotificationQueue();
  const webhooks = new MemoryWebhooks();
  const signals = new MemorySignals();
  const log = new MemoryLog();
  const decisions = new MemoryDecisions();
  const tokens = new JoseApprovalTokens({ current: signingKey() }, () => clock.now());

  // What the composition root renders with: the views.
  const mails = { approverMail, settledMail, requesterMail };
  const deps: Deps = {
    requests: new AuditedRequests(requests, audit, clock),
    policies,
    enforcement: baselineEnforcement(() => deps),
    reach: networkReach(() => deps),
    grants,
    audit,
    queues,
    scheduledMessages: scheduled,
    network,
    nsgs,
    locks,
    leases,
    clock,
    settings: { ...TEST_SETTINGS, ...o.settings },
    log,
    notifier: new MailNotifier(mail, mails),
    signals,
    channels: {
      targets: o.targets ?? [],
      queue: notifications,
      http: webhooks,
      compose: { delivery: deliveryOf },
      maxAttempts: 3,
      firstRetryDelayInSeconds: 15,
    },
    approvals: {
      decisions,
      tokens,
      mailer: mail,
      compose: mails,
      publicBaseUrl: PUBLIC_BASE_URL,
      groupMailboxes: {},
      signInAvailable: true,
      ...o.approvals,
    },
  };

  const world = {
    deps,
    clock,
    /** The request table itself (reads here never flush a pending audit event). */
    requests,
    policies,
    grants,
    audit,
    anchors,
    queues,
    scheduled,
    network,
    nsgs,
    locks,
    leases,
    mail,
    notifications,
    webhooks,
    signals,
    log,
    decisions,
    tokens,

    /** A VM with its NSGs, known to ARM. */
    addVm(options: VmOptions = {}): VmNetworkPath {
      const vm = aVm(options);
      network.addVm(vm);
      return vm;
    },
    async addPolicy(policy: Policy): Promise<Policy> {
      await policies.upsert(policy);
      return policy;
    },
    /** `POST /api/requests` from the caller's address. */
    submit(caller: Principal, body: unknown, address: string | undefined = CALLER_ADDRESS) {
      return submitRequest(deps, caller, body, address);
    },
    /** The request as stored now. */
    request(id: string): AccessRequest {
      const r = requests.value(id);
      if (!r) throw new Error(`no request ${id}`);
      return r;
    },
    /** Runs what the Storage queues hold (evaluations, then grants) until both are empty, as the host would. */
    async runQueues(): Promise<void> {
      for (let i = 0; i < 100 && (queues.evaluations.length || queues.grants.length); i++) {
        const evaluation = queues.evaluations.shift();
        if (evaluation) await evaluateRequest(deps, evaluation);
        const grant = queues.grants.shift();
        if (grant) await applyGrant(deps, grant);
      }
    },
    /**
     * Moves the clock on by `seconds` and delivers the scheduled messages then due to their handlers (expiry and
     * approval deadline on jit-expirations, start on jit-starts), then runs the queues.
     */
    async advance(seconds: number): Promise<void> {
      clock.advance(seconds);
      for (const m of scheduled.takeDue(clock.now())) {
        if (m.purpose === 'expire') await expireGrant(deps, m.body as ExpiryMessage);
        else if (m.purpose === 'start') await startScheduledRequest(deps, m.body as StartMessage);
        else await expireApproval(deps, m.body as ApprovalDeadlineMessage);
      }
      await world.runQueues();
    },
    /** The approval links mailed to an address: the token of each, newest last. */
    tokensMailedTo(address: string): string[] {
      return mail
        .to(address)
        .flatMap((m) => [...m.text.matchAll(/[?&]token=([^&\s]+)&intent=approve/g)])
        .map((match) => decodeURIComponent(match[1]!));
    },
  };
  return world;
}

/** A world with one VM (one NSG) under an auto-approving policy for its resource group, grants of up to four hours. */
export async function oneVmWorld(policy: Parameters<typeof aPolicy>[0] = {}) {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(
    aPolicy({
      scope: resourceGroupOf(vm),
      ports: [{ port: 22, protocol: 'Tcp', maxDurationInSeconds: 4 * 3600 }],
      ...policy,
    }),
  );
  return { w, vm, nsg: vm.nsgIds[0]! };
}

/** That world with `requester`'s access to its VM's port 22 for an hour, live. */
export async function liveGrant(requester: Principal, policy: Parameters<typeof aPolicy>[0] = {}) {
  const { w, vm, nsg } = await oneVmWorld(policy);
  const { id } = await w.submit(requester, aRequestBody(vm));
  await w.runQueues();
  return { w, vm, nsg, id };
}
