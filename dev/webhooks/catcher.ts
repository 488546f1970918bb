/**
 * The sandbox's webhook catcher: stands in for a Teams Workflows webhook, a Slack incoming webhook and a generic
 * webhook receiver, on loopback. It keeps every delivery in memory, for tests to read and for a person to look at
 * on a small web page (like the mail catcher), checks generic webhooks' signatures the way a receiver should, and
 * can be told to fail the next deliveries to a target, to show retries and the dead-letter queue.
 *
 * Answers as the real receivers do on success: a Teams Workflows webhook `202 Accepted` (the flow runs after it
 * answers; observed by client libraries, e.g. atc0005/go-teams-notify pull request 265), Slack `200` with the body
 * `ok` (https://api.slack.com/messaging/webhooks), a generic receiver `204`. The app treats any 2xx as delivered.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WEBHOOK_HEADERS, verifyWebhookSignature } from '../../shared/domain/notifications';
import { markup } from '../../shared/views/html';
import { CaughtList } from '../caught';

export type CaughtKind = 'teams' | 'slack' | 'webhook';

export interface CaughtDelivery {
  id: number;
  kind: CaughtKind;
  /** The target name in the path (`/teams/<name>`). */
  target: string;
  receivedAt: Date;
  headers: Record<string, string>;
  /** The body as received, and parsed when it is JSON. */
  text: string;
  json?: unknown;
  /** Webhooks: whether the signature and timestamp check out with the target's key. */
  signatureValid?: boolean;
  /** The status the catcher answered (a failure it was told to inject, or success). */
  status: number;
}

export interface WebhookCatcherOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The HMAC key of each generic webhook target, by name, to check signatures with. */
  secrets?: Record<string, Uint8Array>;
}

const SUCCESS: Record<CaughtKind, { status: number; body: string }> = {
  teams: { status: 202, body: '' },
  slack: { status: 200, body: 'ok' },
  webhook: { status: 204, body: '' },
};

export class WebhookCatcher {
  private readonly caught = new CaughtList<CaughtDelivery>('a webhook delivery');
  private readonly faults = new Map<string, { status: number; remaining: number }>();
  private server?: Server;
  private nextId = 1;

  constructor(private readonly options: WebhookCatcherOptions = {}) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Where a target of a kind posts. */
  endpoint(kind: CaughtKind, target: string): string {
    return `http://127.0.0.1:${this.port}/${kind}/${encodeURIComponent(target)}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.options.port ?? 0, '127.0.0.1', () => resolve());
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
  }

  /** Every delivery caught so far, oldest first. */
  list(): readonly CaughtDelivery[] {
    return this.caught.list();
  }

  /** The next `times` deliveries to `target` are answered `status` (and still recorded). */
  failNext(target: string, status: number, times: number): void {
    this.faults.set(target, { status, remaining: times });
  }

  /** Resolves with the first delivery (caught or still to come) that matches. */
  waitFor(
    what: string,
    match: (d: CaughtDelivery) => boolean,
    timeoutInMs = 20_000,
  ): Promise<CaughtDelivery> {
    return this.caught.waitFor(what, match, timeoutInMs);
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/(teams|slack|webhook)\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const kind = m[1] as CaughtKind;
      const target = decodeURIComponent(m[2] ?? '');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        // kept as text
      }
      const secret = this.options.secrets?.[target];
      const fault = this.faults.get(target);
      const answer =
        fault && fault.remaining > 0 ? { status: fault.status, body: 'injected failure' } : SUCCESS[kind];
      if (fault && fault.remaining > 0) fault.remaining--;
      const delivery: CaughtDelivery = {
        id: this.nextId++,
        kind,
        target,
        receivedAt: new Date(),
        headers,
        text,
        json,
        signatureValid:
          kind === 'webhook' && secret
            ? verifyWebhookSignature(
                secret,
                {
                  signature: headers[WEBHOOK_HEADERS.signature],
                  timestamp: headers[WEBHOOK_HEADERS.timestamp],
                },
                text,
                Math.floor(Date.now() / 1000),
              )
            : undefined,
        status: answer.status,
      };
      this.caught.add(delivery);
      res.writeHead(answer.status, { 'Content-Type': 'text/plain' }).end(answer.body);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/') {
      res
        .writeHead(200, {
          'Content-Type': 'text/html; charset=utf-8',
          'Cache-Control': 'no-store',
          'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
        })
        .end(this.listPage());
      return;
    }
    if (req.method === 'GET' && url.pathname === '/deliveries') {
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(JSON.stringify(this.caught.list(), null, 2));
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found');
  }

  private listPage(): string {
    const rows = [...this.caught.list()].reverse().map((d) => {
      const summary = summaryOf(d);
      const signature =
        d.signatureValid === undefined
          ? ''
          : d.signatureValid
            ? ' · signature valid'
            : ' · SIGNATURE INVALID';
      return markup`<article>
          <h2>${d.kind} → ${d.target}: ${summary}</h2>
          <p><small>${d.receivedAt.toISOString()} · answered ${String(d.status)}${signature}</small></p>
          <details><summary>payload</summary><pre>${d.json === undefined ? d.text : JSON.stringify(d.json, null, 2)}</pre></details>
        </article>`;
    });
    return markup`<!doctype html>
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>Sandbox webhooks (${this.caught.list().length})</title>
          <style>
            body { font-family: system-ui, sans-serif; margin: 16px; max-width: 900px; }
            article { border-bottom: 1px solid #ddd; padding: 8px 0; }
            h2 { font-size: 1.05rem; margin: 0; }
            pre { font-size: 0.8rem; white-space: pre-wrap; word-break: break-all; }
          </style>
        </head>
        <body>
          <h1>Chat and webhook deliveries caught by the sandbox</h1>
          <p>Newest first. Teams cards, Slack messages and signed webhooks, as the app posted them; nothing was delivered anywhere. Reload for new ones.</p>
          ${rows.length ? rows : markup`<p>Nothing yet.</p>`}
        </body>
      </html>`.html;
  }
}

/** A line for the list: the card's headline, the Slack text, or the webhook's summary. */
function summaryOf(d: CaughtDelivery): string {
  const j = d.json as Record<string, unknown> | undefined;
  if (!j) return '(not JSON)';
  if (d.kind === 'slack' && typeof j.text === 'string') return j.text;
  if (d.kind === 'webhook' && typeof j.summary === 'string') return j.summary;
  const card = (j.attachments as Array<{ content?: { body?: Array<{ text?: string }> } }> | undefined)?.[0]
    ?.content;
  return card?.body?.[0]?.text?.replace(/\\(.)/g, '$1') ?? '(no headline)';
}
