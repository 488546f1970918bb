/**
 * The ACS Email adapter against a local stand-in for the service (HTTPS, as the bearer-token policy insists):
 * what the real `EmailClient` sends for one mail, and that a failed send is an error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loopbackCertificate } from '../../../dev/loopbackCertificate';
import { AcsMailer } from '../../../shared/adapters/acsMailer';
import { TransientFailure } from '../../../shared/domain/errors';

interface Seen {
  method: string;
  path: string;
  authorization?: string;
  body?: unknown;
}

async function fakeAcs(finalStatus: 'Succeeded' | 'Failed') {
  const tlsCert = await loopbackCertificate('localhost');
  const seen: Seen[] = [];
  const server = createServer(tlsCert, (req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'https://localhost');
      seen.push({
        method: req.method ?? '',
        path: url.pathname,
        authorization: req.headers.authorization,
        body: text ? JSON.parse(text) : undefined,
      });
      const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      res.setHeader('content-type', 'application/json');
      if (req.method === 'POST' && url.pathname === '/emails:send') {
        res.setHeader('operation-location', `${base}/emails/operations/op-1?${url.searchParams.toString()}`);
        res.setHeader('retry-after', '0');
        res.writeHead(202).end(JSON.stringify({ id: 'op-1', status: 'Running' }));
      } else if (req.method === 'GET' && url.pathname === '/emails/operations/op-1') {
        res.writeHead(200).end(
          JSON.stringify({
            id: 'op-1',
            status: finalStatus,
            ...(finalStatus === 'Failed'
              ? { error: { code: 'Denied', message: 'sender not verified' } }
              : {}),
          }),
        );
      } else res.writeHead(404).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { endpoint, ca: tlsCert.cert, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const credential = {
  getToken: async (scopes: string | string[]) => ({
    token: `token-for-${String(scopes)}`,
    expiresOnTimestamp: Date.now() + 3600_000,
  }),
};

test('a mail goes to ACS with the managed identity token, sender, recipients and both bodies', async () => {
  const acs = await fakeAcs('Succeeded');
  try {
    const mailer = new AcsMailer(
      { mode: 'acs', from: 'DoNotReply@example.com', endpoint: acs.endpoint },
      credential,
      {
        tlsOptions: { ca: acs.ca },
        pollIntervalInMs: 10,
      },
    );
    await mailer.send({
      to: ['bob@example.com'],
      subject: 'Approve access?',
      text: 'plain',
      html: '<p>html</p>',
    });
    const send = acs.seen.find((s) => s.method === 'POST');
    assert.ok(send, 'the send call reached the service');
    assert.equal(send.authorization, 'Bearer token-for-https://communication.azure.com//.default');
    assert.deepEqual(send.body, {
      senderAddress: 'DoNotReply@example.com',
      content: { subject: 'Approve access?', plainText: 'plain', html: '<p>html</p>' },
      recipients: { to: [{ address: 'bob@example.com' }] },
      userEngagementTrackingDisabled: true,
    });
    assert.ok(
      acs.seen.some((s) => s.method === 'GET'),
      'the operation was followed to its end',
    );
  } finally {
    await acs.close();
  }
});

test('a send the service reports as failed is an error', async () => {
  const acs = await fakeAcs('Failed');
  try {
    const mailer = new AcsMailer(
      { mode: 'acs', from: 'DoNotReply@example.com', endpoint: acs.endpoint },
      credential,
      {
        tlsOptions: { ca: acs.ca },
        pollIntervalInMs: 10,
      },
    );
    await assert.rejects(
      mailer.send({ to: ['bob@example.com'], subject: 's', text: 't', html: '<p>h</p>' }),
      (e: Error) => e instanceof TransientFailure || /sender not verified|Failed/.test(e.message),
    );
  } finally {
    await acs.close();
  }
});
