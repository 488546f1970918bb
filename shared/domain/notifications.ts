/**
 * Chat and webhook notifications: what a channel (Teams, Slack) or a system (a generic webhook) hears of, which
 * targets hear of what, and how deliveries are retried. Delivery runs off the grant path, through the queue
 * jit-notifications (shared/usecases/notifyChannels.ts); the payloads are in shared/views/chatCards.ts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AccessRequest, Protocol, RequestStatus } from './types';

/** What a notification tells: the moments a channel or a system wants to hear of. */
export const NOTIFICATION_KINDS = [
  'approval.needed',
  'request.approved',
  'request.denied',
  'grant.live',
  'grant.ended',
  'grant.failed',
  'drift.found',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** Where a chat or webhook notification goes. The URL (and HMAC key) are secrets: they come from Key Vault. */
export interface NotifyTarget {
  /** A short name, used in logs, queue messages and the catcher; never the URL. */
  name: string;
  type: 'teams' | 'slack' | 'webhook';
  url: string;
  /** `webhook` only: the HMAC-SHA256 key that signs each delivery (at least 32 bytes). */
  secret?: Uint8Array;
  /** Only these kinds (default: all). */
  events?: readonly NotificationKind[];
  /** Only requests decided by these policies (lower-cased scopes); default: every policy. */
  policies?: readonly string[];
}

/** The request a notification is about, as a reader needs it (no secrets, no tokens but the approvers' links). */
export interface NotifiedRequest {
  id: string;
  requester: string;
  vm: string;
  ports: number[];
  protocol: Protocol;
  sourcePrefix: string;
  durationInSeconds: number;
  status: RequestStatus;
  policy: string;
  justification?: string;
  statusReason?: string;
  expiresAt?: string;
  startAt?: string;
}

/** One notification: what happened, when, by whom, about what. Its id is the delivery id receivers dedupe on. */
export interface Notification {
  id: string;
  kind: NotificationKind;
  /** When it happened (ISO 8601). */
  at: string;
  actor?: string;
  request?: NotifiedRequest;
  /** `approval.needed`: each approver's link (valid for that approver only, until the deadline). */
  approvals?: Array<{ approver: string; url: string }>;
  approvalDeadline?: string;
  /** `drift.found`: the rule and what it opens. */
  drift?: { nsg: string; rule: string; detail: string };
}

/** A queued delivery: one notification to one target, and which attempt this is (1 = the first). */
export interface NotificationMessage {
  target: string;
  attempt: number;
  notification: Notification;
}

export function notifiedRequest(r: AccessRequest): NotifiedRequest {
  return {
    id: r.id,
    requester: r.requester,
    vm: r.vmId,
    ports: r.ports,
    protocol: r.protocol,
    sourcePrefix: r.sourcePrefix,
    durationInSeconds: r.durationInSeconds,
    status: r.status,
    policy: r.policyScope,
    justification: r.justification,
    statusReason: r.statusReason,
    expiresAt: r.expiresAt,
    startAt: r.startAt,
  };
}

/**
 * Which notification a request's move makes, if any. Approval needed is sent by the approval flow itself (it holds
 * the links); a request cancelled before it went live ended nothing.
 */
export function kindOfTransition(after: AccessRequest): NotificationKind | undefined {
  switch (after.status) {
    case 'approved':
    case 'scheduled':
      return 'request.approved';
    case 'denied':
    case 'approval-expired':
      return 'request.denied';
    case 'active':
      return 'grant.live';
    case 'expired':
    case 'revoked':
      return after.activatedAt ? 'grant.ended' : undefined;
    case 'failed':
      return 'grant.failed';
    default:
      return undefined;
  }
}

/** The targets that hear of a notification: those whose `events` and `policies` (when given) include it. */
export function targetsFor(targets: readonly NotifyTarget[], n: Notification): NotifyTarget[] {
  const policy = n.request?.policy.toLowerCase();
  return targets.filter(
    (t) =>
      (!t.events || t.events.includes(n.kind)) &&
      // Drift is about an NSG, not a request: a policy-bound target hears of it only through `events`.
      (!t.policies || (policy !== undefined && t.policies.includes(policy)) || n.kind === 'drift.found'),
  );
}

/** What a failed delivery is: worth another try (the receiver or the network may recover) or final. */
export function isRetryableStatus(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/** Seconds before attempt `next` (2, 3, …): `first` doubling each time, ±20 %, at most an hour. */
export function retryDelayInSeconds(next: number, first: number, random: () => number = Math.random): number {
  const base = Math.min(3600, first * 2 ** Math.max(0, next - 2));
  return Math.max(0, Math.round(base * (0.8 + 0.4 * random())));
}

/** Headers of a generic webhook delivery (docs/operations.md, "Verifying a webhook"). */
export const WEBHOOK_HEADERS = {
  signature: 'x-jit-signature',
  timestamp: 'x-jit-timestamp',
  delivery: 'x-jit-delivery',
  event: 'x-jit-event',
} as const;

/**
 * The signature of a delivery, as Stripe and GitHub sign theirs: HMAC-SHA256 with the target's key over
 * `<timestamp>.<body>` (the timestamp in Unix seconds, the body exactly as sent), hex, prefixed `v1=`. Signing the
 * timestamp lets a receiver refuse replays older than a few minutes; the prefix leaves room for another scheme.
 */
export function webhookSignature(secret: Uint8Array, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

/**
 * How a receiver checks a delivery: the signature matches (compared in constant time) and the timestamp is within
 * `toleranceInSeconds` of now. The sandbox's webhook catcher and the tests verify with this.
 */
export function verifyWebhookSignature(
  secret: Uint8Array,
  headers: { signature?: string; timestamp?: string },
  body: string,
  nowInSeconds: number,
  toleranceInSeconds = 300,
): boolean {
  const timestamp = Number(headers.timestamp);
  if (!headers.signature || !Number.isInteger(timestamp)) return false;
  if (Math.abs(nowInSeconds - timestamp) > toleranceInSeconds) return false;
  const expected = Buffer.from(webhookSignature(secret, timestamp, body));
  return headers.signature
    .split(',')
    .map((s) => Buffer.from(s.trim()))
    .some((given) => given.length === expected.length && timingSafeEqual(given, expected));
}
