import type { AuditAction } from './auditActions';
/**
 * The domain's nouns. Nothing here imports an Azure SDK: these types are what the tables hold,
 * what the API returns and what the use cases reason about.
 */

export type Protocol = 'Tcp' | 'Udp' | '*';

/** Where a request stands. Final states never change again. */
export type RequestStatus =
  | 'submitted' // accepted, not yet evaluated against its policy
  | 'pending-approval' // waiting for approvers
  | 'scheduled' // approved, waiting for its start time
  | 'approved' // approved, rules being written
  | 'active' // rules in place; a revoke is scheduled at expiresAt
  | 'denied'
  | 'approval-expired'
  | 'failed'
  | 'expired'
  | 'revoked';

export const FINAL_STATUSES: ReadonlySet<RequestStatus> = new Set([
  'denied',
  'approval-expired',
  'failed',
  'expired',
  'revoked',
]);

export function isFinal(status: RequestStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/** One port a policy allows, and for how long at most. */
interface PolicyPort {
  port: number;
  protocol: Protocol;
  /** Longest grant for this port, in seconds. */
  maxDurationInSeconds: number;
}

export type ApprovalMode = 'auto' | 'manual';

/**
 * Who may request which ports on which scope (a subscription, a resource group or one VM).
 * The most specific scope that covers a VM decides; broader policies do not add to it.
 */
export interface Policy {
  /** Lower-cased ARM id of the subscription, resource group or VM the policy covers. */
  scope: string;
  /** Why the policy exists, as its author wrote it (shown by `jit policy explain`). */
  description?: string;
  ports: PolicyPort[];
  /** CIDR prefixes the source may lie in; `my-ip` means the caller's own address; `*` must be explicit. */
  allowedSourcePrefixes: string[];
  /** `*` (anyone signed in), `user:<upn or object id>`, `group:<object id>`. */
  requesters: string[];
  approval: {
    mode: ApprovalMode;
    approvers: string[];
    required: number;
    timeoutInSeconds: number;
  };
  justification: { required: boolean; pattern?: string };
  /** Keep a baseline deny rule for the policy's ports in the NSGs of covered VMs. */
  enforce: boolean;
  /**
   * Cut established sessions when a grant ends: JIT turns on `flushConnection` on every NSG in the VM's path before
   * opening, so removing the allow rule also ends the connections it let in. Absent (policies stored before the
   * option existed) means false.
   */
  cutSessions?: boolean;
}

/** A person, or an application acting for itself (a pipeline's service principal: an app-only token). */
type PrincipalKind = 'user' | 'app';

/**
 * The signed-in caller, as the authentication layer established it. Entra principals are keyed by tenant and
 * object id, which never change and are never reused; names and mail addresses can change hands, and an `email`
 * claim is not verified, so they are shown but never decide who someone is (docs/security.md).
 */
export interface Principal {
  /**
   * The stable key everything is owned and compared by: `<tenant id>/<object id>` (lower-case) for Entra
   * principals, the user name itself in the sandbox's `dev` mode.
   */
  id: string;
  kind: PrincipalKind;
  /** A readable name for records, pages and mail: the member's UPN, else what the token names them by. */
  name: string;
  /** Entra tenant (`tid`) and object (`oid`) ids, where a token gave them. */
  tenantId?: string;
  objectId?: string;
  /**
   * The UPN, only for a member account of the tenant whose token carries a `upn` claim: the one name a `user:`
   * entry may match besides the object id. Guests never have one here.
   */
  upn?: string;
  /** The application (client) id of an app-only caller (`azp` / `appid`). */
  appId?: string;
  displayName?: string;
  groups: string[];
  roles: string[];
}

/** A request for access, one row in `JitRequests`. */
export interface AccessRequest {
  id: string;
  /** Who asked, readable (a member's UPN, a name, `app:<client id>`): shown and mailed, never compared. */
  requester: string;
  /**
   * The requester's stable key (`Principal.id`): who owns the request, may extend it, and may not approve it.
   * Requests stored before it existed have none; their `requester` is then the key.
   */
  requesterId?: string;
  /** ARM id of the VM, as ARM returns it (case preserved; compare lower-cased). */
  vmId: string;
  ports: number[];
  protocol: Protocol;
  /** Canonical CIDR of the source, or `*` where a policy explicitly allows any source. */
  sourcePrefix: string;
  /** How long access lasts once live, including any extensions since. */
  durationInSeconds: number;
  justification?: string;
  status: RequestStatus;
  /** Human-readable reason for the current status (denial reason, failure cause). */
  statusReason?: string;
  /** Scope of the policy that decided. */
  policyScope: string;
  approvalMode: ApprovalMode;
  createdAt: string;
  updatedAt: string;
  approvedAt?: string;
  activatedAt?: string;
  /** When access ends. Set before any rule is written, so every rule has a known deadline. */
  expiresAt?: string;
  endedAt?: string;
  /** Service Bus sequence number of the scheduled expiry message. */
  expirySequenceNumber?: string;
  /** Manual approval: when the request stops waiting for a decision and becomes `approval-expired`. */
  approvalDeadline?: string;
  /** Manual approval: Service Bus sequence number of the scheduled message at the approval deadline. */
  approvalDeadlineSequenceNumber?: string;
  /** Manual approval: when the approvers were mailed (unset means a retry must still mail them). */
  approversNotifiedAt?: string;
  /** When access should begin, for a request made ahead of time; it waits as `scheduled` until then. */
  startAt?: string;
  /** Service Bus sequence number of the scheduled start message. */
  startSequenceNumber?: string;
  /** Who revoked (or, before it went live, cancelled) the request; `endedAt` says when. */
  revokedBy?: string;
}

/**
 * How a principal appears in the audit trail: their readable name as `actor` and, for an Entra principal, their
 * key (`<tenant id>/<object id>`) as `actorId` beside it. The sandbox's named users have no object id to record.
 */
export function auditActor(p: Principal): { actor: string; actorId?: string } {
  return p.objectId ? { actor: p.name, actorId: p.id.toLowerCase() } : { actor: p.name };
}

/** The key that owns a request: its `requesterId`, or for a request stored before that existed, its `requester`. */
export function requesterKey(r: Pick<AccessRequest, 'requester' | 'requesterId'>): string {
  return (r.requesterId ?? r.requester).toLowerCase();
}

/** One NSG rule written for a grant: a row in `JitGrants`. */
export interface GrantRule {
  requestId: string;
  nsgId: string;
  ruleName: string;
  priority: number;
  destinationAddresses: string[];
  /**
   * `applying` is written before the PUT, so a crash leaves a row that says where to look. `neutralised`: a lock
   * refused the delete, so the same rule was turned to `Deny` (it lets nothing in) and the delete is retried.
   */
  state: 'applying' | 'applied' | 'neutralised' | 'removed';
  expiresAt: string;
  updatedAt: string;
  /**
   * Whether the allow rule lets anything in: false when a deny rule of higher priority (a lower number) in the same
   * NSG matches the granted ports and source, so traffic never reaches this rule. Unknown until written.
   */
  effective?: boolean;
  /** The rule that shadows it (name and priority), when `effective` is false. */
  shadowedBy?: string;
  /** Why the rule could not be closed (a `ReadOnly` lock): while set, the rule still lets traffic in. */
  closeBlocked?: string;
}

/**
 * One line of the audit trail. Every field becomes a column of the same name in `JitAudit` (arrays joined with
 * commas), so a field added here is stored, hashed and returned without further changes (docs/audit.md).
 */
export interface AuditEvent {
  /** Who did it, readable: a person's UPN or name, an app, or `system:<component>`. */
  actor: string;
  /** The actor's stable key beside the name (`<tenant id>/<object id>` for Entra principals); none for the system. */
  actorId?: string;
  /** One of `AUDIT_ACTIONS` (shared/domain/auditActions.ts): the compiler refuses any other. */
  action: AuditAction;
  requestId?: string;
  vm?: string;
  ports?: number[];
  sourcePrefix?: string;
  /** Free text for a person: reason, rule names, error. */
  detail?: string;
  /** Where the actor came from (client address), when known. */
  clientAddress?: string;
  /** The requester's justification, verbatim. */
  justification?: string;
  /** ARM id of the NSG a rule was written to or removed from. */
  nsg?: string;
  /** Name of the NSG rule. */
  rule?: string;
  /** Priority of the NSG rule. */
  priority?: number;
  /** When access ends (as scheduled, or as extended). */
  expiresAt?: string;
  /** Service Bus sequence number of the scheduled expiry message. */
  expirySequenceNumber?: string;
  /** Identifies a state change's event, so that appending it again after a crash is recognised. */
  eventId?: string;
}

/** One NSG in front of a VM, and which of the VM's addresses it filters. */
export interface NsgGuard {
  /** Lower-cased NSG id. */
  nsgId: string;
  /** The VM's private addresses whose inbound traffic passes this NSG. */
  addresses: string[];
}

/** The network path in front of one VM, as ARM describes it. */
export interface VmNetworkPath {
  vmId: string;
  vmName: string;
  osType?: 'Linux' | 'Windows';
  /** Private addresses of the VM's IP configurations. */
  privateAddresses: string[];
  /** Every NSG traffic passes (subnet NSGs, then NIC NSGs), de-duplicated, ids lower-cased. */
  nsgIds: string[];
  /** The same NSGs, in the same order, each with the addresses it filters. */
  guards: NsgGuard[];
  /** Addresses no NSG filters: nothing JIT writes can open or close them. */
  unguardedAddresses: string[];
}

/** An NSG security rule as far as JIT needs to see it. */
export interface SecurityRuleView {
  name: string;
  priority: number;
  direction: 'Inbound' | 'Outbound';
  access: 'Allow' | 'Deny';
  protocol: string;
  sourceAddressPrefixes: string[];
  destinationAddressPrefixes: string[];
  destinationPortRanges: string[];
  description?: string;
  /**
   * ARM's provisioning state: `Succeeded`, `Updating`, `Deleting` or `Failed`. Only `Succeeded` is a rule in place:
   * `Updating` is an operation still running, and `Failed` is a rule ARM may or may not enforce
   * (https://learn.microsoft.com/azure/networking/troubleshoot-failed-state), which another write recovers.
   */
  provisioningState: string;
}

/** The body of an NSG rule to write: a grant's allow rule, or (with `access: 'Deny'`) a baseline deny rule. */
export interface AllowRuleSpec {
  name: string;
  /** Default `Allow`. */
  access?: 'Allow' | 'Deny';
  priority: number;
  protocol: Protocol;
  sourceAddressPrefix: string;
  destinationAddressPrefixes: string[];
  destinationPortRanges: string[];
  description: string;
}
