/**
 * Notifications as each kind of target wants them:
 * - Microsoft Teams, through a Workflows webhook ("Post to a channel when a webhook request is received"): a
 *   message with one Adaptive Card attachment, the shape in "Send Adaptive Cards using an Incoming Webhook"
 *   (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using) —
 *   `{type: "message", attachments: [{contentType: "application/vnd.microsoft.card.adaptive", content: <card>}]}`.
 *   Card version 1.4: Workflows refuse later versions (Skitionek/notify-microsoft-teams issue 107,
 *   atc0005/go-teams-notify pull request 265).
 * - Slack, through an incoming webhook (https://api.slack.com/messaging/webhooks): `text` (the notification's
 *   fallback) and Block Kit `blocks` (https://api.slack.com/reference/block-kit/blocks), within their limits.
 * - A generic webhook: the JSON of docs/operations.md ("Webhooks"), schemas/webhook.schema.json.
 * Every string from a person (justification, reason, names) is escaped for the target's markup.
 */
import type { KnownBlock, SectionBlock } from '@slack/types';
import { WEBHOOK_HEADERS, webhookSignature } from '../domain/notifications';
import type { Notification, NotificationKind, NotifyTarget } from '../domain/notifications';
import type { Delivery } from '../domain/ports';
import { formatDuration } from '../domain/duration';
import { describePorts, describeTime, describeVm, vmName } from './requestFacts';

/** Version of the generic webhook's JSON; a change that breaks readers is a new version. */
const WEBHOOK_SCHEMA_VERSION = 1;

const HEADLINES: Record<NotificationKind, string> = {
  'approval.needed': 'Approval needed',
  'request.approved': 'Approved',
  'request.denied': 'Denied',
  'grant.live': 'Access live',
  'grant.ended': 'Access ended',
  'grant.failed': 'Access failed',
  'drift.found': 'Drift found',
};

/** One line that says what happened, for a notification banner and the start of every card. */
function headline(n: Notification): string {
  const r = n.request;
  if (n.kind === 'drift.found' && n.drift)
    return `${HEADLINES[n.kind]}: ${n.drift.rule} in ${vmName(n.drift.nsg)}`;
  if (!r) return HEADLINES[n.kind];
  const head =
    n.kind === 'request.denied' && r.status === 'approval-expired'
      ? 'No decision in time'
      : HEADLINES[n.kind];
  return `${head}: ${r.requester} → ${vmName(r.vm)} ${r.ports.join(',')}`;
}

/** The facts shown under the headline, as label/value pairs (plain text: each renderer escapes). */
function notificationFacts(n: Notification): Array<[string, string]> {
  if (n.kind === 'drift.found' && n.drift)
    return [
      ['NSG', describeVm(n.drift.nsg)],
      ['Rule', n.drift.rule],
      ['What it opens', n.drift.detail],
    ];
  const r = n.request;
  if (!r) return [];
  const facts: Array<[string, string]> = [
    ['Requested by', r.requester],
    ['VM', describeVm(r.vm)],
    ['Ports', describePorts(r)],
    ['From address', r.sourcePrefix === '*' ? 'any address' : r.sourcePrefix],
    ['For', formatDuration(r.durationInSeconds)],
  ];
  if (r.justification?.trim()) facts.push(['Justification', r.justification]);
  if (n.kind === 'grant.live' && r.expiresAt) facts.push(['Until', describeTime(r.expiresAt)]);
  if (n.kind === 'request.approved' && r.startAt) facts.push(['Starts', describeTime(r.startAt)]);
  if (n.kind === 'approval.needed' && n.approvalDeadline)
    facts.push(['Decide by', describeTime(n.approvalDeadline)]);
  if (
    (n.kind === 'request.denied' || n.kind === 'grant.failed' || n.kind === 'grant.ended') &&
    r.statusReason
  )
    facts.push(['Reason', r.statusReason]);
  if (n.actor && !n.actor.startsWith('system:')) facts.push(['By', n.actor]);
  facts.push(['Request id', r.id]);
  return facts;
}

// ---- Teams -------------------------------------------------------------------------------------------------

/**
 * Adaptive Card text is Markdown (a CommonMark subset): backslash-escape what would make a person's text a link
 * (`[…](…)`), emphasis or code. Only those: other punctuation stays readable as it is.
 */
function escapeCardMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]<>~]/g, (c) => `\\${c}`);
}

export function teamsMessage(n: Notification): Record<string, unknown> {
  const actions = (n.approvals ?? []).slice(0, 5).map((a) => ({
    type: 'Action.OpenUrl',
    title: `Review as ${a.approver.replace(/^(user|group):/, '')}`.slice(0, 60),
    url: a.url,
  }));
  const card = {
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    version: '1.4',
    body: [
      {
        type: 'TextBlock',
        text: escapeCardMarkdown(headline(n)),
        weight: 'Bolder',
        size: 'Medium',
        wrap: true,
        color: n.kind === 'grant.failed' || n.kind === 'drift.found' ? 'Attention' : 'Default',
      },
      {
        type: 'FactSet',
        facts: notificationFacts(n).map(([title, value]) => ({ title, value: escapeCardMarkdown(value) })),
      },
      {
        type: 'TextBlock',
        text: escapeCardMarkdown(`${describeTime(n.at)} · azure-jit-access`),
        size: 'Small',
        isSubtle: true,
        wrap: true,
      },
    ],
    ...(actions.length ? { actions } : {}),
  };
  return {
    type: 'message',
    attachments: [
      { contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content: card },
    ],
  };
}

// ---- Slack -------------------------------------------------------------------------------------------------

/** Slack's mrkdwn needs `&`, `<` and `>` escaped (https://api.slack.com/reference/surfaces/formatting#escaping). */
function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

export function slackMessage(n: Notification): { text: string; blocks: KnownBlock[] } {
  const facts = notificationFacts(n);
  const fields: SectionBlock['fields'] = facts
    .slice(0, 10)
    .map(([label, value]) => ({ type: 'mrkdwn', text: clip(`*${label}*\n${escapeSlack(value)}`, 2000) }));
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(headline(n), 150), emoji: false } },
  ];
  if (fields.length) blocks.push({ type: 'section', fields });
  const buttons = (n.approvals ?? []).slice(0, 5).map((a, i) => ({
    type: 'button' as const,
    action_id: `review-${i}`,
    text: {
      type: 'plain_text' as const,
      text: clip(`Review as ${a.approver.replace(/^(user|group):/, '')}`, 75),
    },
    url: a.url,
  }));
  if (buttons.length) blocks.push({ type: 'actions', elements: buttons });
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: escapeSlack(`${describeTime(n.at)} · azure-jit-access`) }],
  });
  return { text: clip(headline(n), 3000), blocks };
}

// ---- generic webhook ---------------------------------------------------------------------------------------

/** The generic webhook's JSON: the notification as data, plus a line for people. */
export function webhookBody(n: Notification): Record<string, unknown> {
  return {
    schemaVersion: WEBHOOK_SCHEMA_VERSION,
    id: n.id,
    kind: n.kind,
    occurredAt: n.at,
    summary: headline(n),
    ...(n.actor ? { actor: n.actor } : {}),
    ...(n.request ? { request: n.request } : {}),
    ...(n.approvals ? { approvals: n.approvals } : {}),
    ...(n.approvalDeadline ? { approvalDeadline: n.approvalDeadline } : {}),
    ...(n.drift ? { drift: n.drift } : {}),
  };
}

/** The body and headers of one delivery to one target. */
export function deliveryOf(target: NotifyTarget, n: Notification, nowInSeconds: number): Delivery {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (target.type === 'teams') return { body: JSON.stringify(teamsMessage(n)), headers };
  if (target.type === 'slack') return { body: JSON.stringify(slackMessage(n)), headers };
  const body = JSON.stringify(webhookBody(n));
  return {
    body,
    headers: {
      ...headers,
      'user-agent': 'azure-jit-access',
      [WEBHOOK_HEADERS.delivery]: n.id,
      [WEBHOOK_HEADERS.event]: n.kind,
      [WEBHOOK_HEADERS.timestamp]: String(nowInSeconds),
      [WEBHOOK_HEADERS.signature]: webhookSignature(target.secret as Uint8Array, nowInSeconds, body),
    },
  };
}
