import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  NOTIFICATION_KINDS,
  WEBHOOK_HEADERS,
  retryDelayInSeconds,
  targetsFor,
  verifyWebhookSignature,
} from '../../../shared/domain/notifications';
import type { Notification, NotificationKind, NotifyTarget } from '../../../shared/domain/notifications';
import { deliveryOf, slackMessage, teamsMessage, webhookBody } from '../../../shared/views/chatCards';
import { slackProblems, teamsProblems, webhookProblems } from '../../support/payloads';

const VM =
  '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/demo-vm';

function notification(kind: NotificationKind, justification = 'patch night'): Notification {
  if (kind === 'drift.found')
    return {
      id: '01J0000000000000000000DRFT',
      kind,
      at: '2026-03-14T10:00:00.000Z',
      actor: 'system:reconciler',
      drift: {
        nsg: '/subscriptions/s/resourceGroups/demo-rg/providers/Microsoft.Network/networkSecurityGroups/demo-subnet-nsg',
        rule: 'allow-ssh-anywhere',
        detail: 'allow-ssh-anywhere allows Tcp 22 from * to 10.0.1.4 at priority 900',
      },
    };
  return {
    id: '01J00000000000000000000000',
    kind,
    at: '2026-03-14T10:00:00.000Z',
    actor: kind === 'request.approved' ? 'approver@example.com' : 'system:grant',
    request: {
      id: '01J0000000000000000000REQ1',
      requester: 'alice@example.com',
      vm: VM,
      ports: [22, 3389],
      protocol: 'Tcp',
      sourcePrefix: '203.0.113.7/32',
      durationInSeconds: 3600,
      status: kind === 'grant.live' ? 'active' : kind === 'grant.failed' ? 'failed' : 'pending-approval',
      policy: '/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/demo-rg',
      justification,
      statusReason: kind === 'grant.failed' ? 'no free priority in 1000-1999' : undefined,
      expiresAt: '2026-03-14T11:00:00.000Z',
    },
    ...(kind === 'approval.needed'
      ? {
          approvals: [
            {
              approver: 'user:approver@example.com',
              url: 'https://jit.example.com/api/approvals?token=abc#approve',
            },
            { approver: 'group:0000-1111', url: 'https://jit.example.com/api/approvals?token=def#approve' },
          ],
          approvalDeadline: '2026-03-14T12:00:00.000Z',
        }
      : {}),
  };
}

describe('notification payloads', () => {
  for (const kind of NOTIFICATION_KINDS) {
    test(`${kind}: a Teams card, a Slack message and a webhook body their receivers accept`, () => {
      const n = notification(kind);
      assert.deepEqual(teamsProblems(teamsMessage(n)), []);
      assert.deepEqual(slackProblems(slackMessage(n)), []);
      assert.deepEqual(webhookProblems(JSON.parse(JSON.stringify(webhookBody(n)))), []);
    });
  }

  test('the checks refuse what a receiver would refuse', () => {
    const n = notification('grant.live');
    const teams = teamsMessage(n) as { attachments: Array<{ content: Record<string, unknown> }> };
    const card = teams.attachments[0]!.content;
    card.version = '1.5';
    (card.body as unknown[]).push({ type: 'TextBlock', text: 'x', size: 'Huge' }, { type: 'Marquee' });
    const problems = teamsProblems(teams).join('\n');
    assert.match(problems, /Workflows take 1.4/);
    assert.match(problems, /Invalid value "Huge"/);
    assert.match(problems, /Unknown element type "Marquee"/);

    const slack = slackMessage(n) as unknown as { blocks: Array<Record<string, unknown>> };
    slack.blocks[0] = { type: 'header', text: { type: 'plain_text', text: 'x'.repeat(151) } };
    slack.blocks.push({
      type: 'section',
      fields: Array.from({ length: 11 }, () => ({ type: 'mrkdwn', text: 'a' })),
    });
    const slackFound = slackProblems(slack).join('\n');
    assert.match(slackFound, /must NOT have more than 150 characters/);
    assert.match(slackFound, /must NOT have more than 10 items/);

    assert.match(webhookProblems({ ...webhookBody(n), secret: 'x' }).join('\n'), /additional properties/);
  });

  test("a person's text cannot turn into markup or a link", () => {
    const n = notification('approval.needed', '[urgent](https://evil.example) <!channel> *now*');
    const cardText = JSON.stringify(teamsMessage(n));
    assert.ok(
      cardText.includes('\\\\[urgent\\\\](https://evil.example) \\\\<!channel\\\\> \\\\*now\\\\*'),
      cardText,
    );
    const slackText = JSON.stringify(slackMessage(n));
    assert.ok(slackText.includes('&lt;!channel&gt;'), slackText);
    assert.ok(!slackText.includes('<!channel>'));
  });

  test('approval needed carries each approver’s link as a button', () => {
    const n = notification('approval.needed');
    const card = (
      teamsMessage(n) as {
        attachments: Array<{ content: { actions: Array<{ url: string; title: string }> } }>;
      }
    ).attachments[0]!.content;
    assert.deepEqual(
      card.actions.map((a) => [a.title, a.url]),
      [
        ['Review as approver@example.com', 'https://jit.example.com/api/approvals?token=abc#approve'],
        ['Review as 0000-1111', 'https://jit.example.com/api/approvals?token=def#approve'],
      ],
    );
    const slack = slackMessage(n);
    const actions = slack.blocks.find((b) => b.type === 'actions') as { elements: Array<{ url: string }> };
    assert.equal(actions.elements.length, 2);
  });
});

describe('webhook signatures', () => {
  const secret = randomBytes(32);
  const target: NotifyTarget = { name: 'siem', type: 'webhook', url: 'https://siem.example/jit', secret };

  test('a delivery verifies with its key and timestamp, and nothing else does', () => {
    const now = 1_773_482_400;
    const { body, headers } = deliveryOf(target, notification('grant.live'), now);
    const h = {
      signature: headers[WEBHOOK_HEADERS.signature],
      timestamp: headers[WEBHOOK_HEADERS.timestamp],
    };
    assert.match(h.signature!, /^v1=[0-9a-f]{64}$/);
    assert.equal(headers[WEBHOOK_HEADERS.delivery], '01J00000000000000000000000');
    assert.equal(headers[WEBHOOK_HEADERS.event], 'grant.live');
    assert.equal(verifyWebhookSignature(secret, h, body, now + 10), true);
    // A changed body, another key, another timestamp, or a replay after the tolerance all fail.
    assert.equal(verifyWebhookSignature(secret, h, body.replace('alice', 'mallory'), now), false);
    assert.equal(verifyWebhookSignature(randomBytes(32), h, body, now), false);
    assert.equal(verifyWebhookSignature(secret, { ...h, timestamp: String(now + 1) }, body, now), false);
    assert.equal(verifyWebhookSignature(secret, h, body, now + 301), false);
    // Teams and Slack get no signature headers (their URLs are the secret).
    const teams = deliveryOf({ name: 't', type: 'teams', url: 'https://x' }, notification('grant.live'), now);
    assert.equal(teams.headers[WEBHOOK_HEADERS.signature], undefined);
  });
});

describe('who hears what, and when again', () => {
  test('targets filter by kind and by policy; drift reaches policy-bound targets that ask for it', () => {
    const policy = '/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/demo-rg';
    const targets: NotifyTarget[] = [
      { name: 'all', type: 'slack', url: 'https://a' },
      { name: 'approvals', type: 'teams', url: 'https://b', events: ['approval.needed'] },
      {
        name: 'other-policy',
        type: 'teams',
        url: 'https://c',
        policies: ['/subscriptions/x/resourcegroups/prod'],
      },
      {
        name: 'this-policy',
        type: 'teams',
        url: 'https://d',
        policies: [policy],
        events: ['grant.live', 'drift.found'],
      },
    ];
    const names = (n: Notification) => targetsFor(targets, n).map((t) => t.name);
    assert.deepEqual(names(notification('approval.needed')), ['all', 'approvals']);
    assert.deepEqual(names(notification('grant.live')), ['all', 'this-policy']);
    assert.deepEqual(names(notification('drift.found')), ['all', 'other-policy', 'this-policy']);
  });

  test('retries back off from the first delay, doubling, within ±20 % and at most an hour', () => {
    assert.equal(
      retryDelayInSeconds(2, 15, () => 0.5),
      15,
    );
    assert.equal(
      retryDelayInSeconds(3, 15, () => 0.5),
      30,
    );
    assert.equal(
      retryDelayInSeconds(5, 15, () => 0.5),
      120,
    );
    assert.equal(
      retryDelayInSeconds(20, 15, () => 0.5),
      3600,
    );
    assert.equal(
      retryDelayInSeconds(2, 15, () => 0),
      12,
    );
    assert.equal(
      retryDelayInSeconds(2, 15, () => 1),
      18,
    );
  });
});
