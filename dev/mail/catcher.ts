/**
 * The sandbox's mail catcher: an SMTP server (smtp-server, parsed with mailparser) on loopback that keeps every
 * mail in memory, for tests to read and for a person to click through on a small web page. Nothing is relayed.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { EventEmitter } from 'node:events';
import { markup } from '../../shared/views/html';
import { CaughtList } from '../caught';

export interface CaughtMail {
  id: number;
  from: string;
  /** Envelope recipients, lower-cased. */
  to: string[];
  subject: string;
  text: string;
  html?: string;
  receivedAt: Date;
  /** Every http(s) URL in the plain-text part, in order. */
  links: string[];
}

export interface MailCatcherOptions {
  /** 0 (the default) picks a free port. */
  smtpPort?: number;
  /** Port of the web view; 0 picks a free one; undefined starts none. */
  webPort?: number;
}

export class MailCatcher {
  private readonly caught = new CaughtList<CaughtMail>('mail');
  private readonly events = new EventEmitter();
  private smtp?: SMTPServer;
  private web?: Server;
  private nextId = 1;

  constructor(private readonly options: MailCatcherOptions = {}) {
    this.events.setMaxListeners(0);
  }

  get smtpPort(): number {
    return (this.smtp?.server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Where a person reads the caught mail, when the web view runs. */
  get webUrl(): string | undefined {
    const a = this.web?.address() as AddressInfo | null | undefined;
    return a ? `http://127.0.0.1:${a.port}/` : undefined;
  }

  async start(): Promise<void> {
    this.smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      size: 5 * 1024 * 1024,
      onData: (stream, session, callback) => {
        simpleParser(stream)
          .then((parsed) => {
            const text = parsed.text ?? '';
            const mail: CaughtMail = {
              id: this.nextId++,
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
              subject: parsed.subject ?? '',
              text,
              html: typeof parsed.html === 'string' ? parsed.html : undefined,
              receivedAt: new Date(),
              links: [...text.matchAll(/https?:\/\/[^\s<>"]+/g)].map((m) => m[0]),
            };
            this.caught.add(mail);
            callback();
          })
          .catch((err: Error) => callback(err));
      },
    });
    await new Promise<void>((resolve, reject) => {
      this.smtp!.server.once('error', reject);
      this.smtp!.listen(this.options.smtpPort ?? 0, '127.0.0.1', () => resolve());
    });
    // A sender that dies mid-conversation (a SIGKILLed host) resets its connection; smtp-server reports that as
    // an 'error' event, which with no listener would take the whole sandbox down. The conversation is simply lost.
    this.smtp.on('error', (err: Error) => this.events.emit('connection-error', err));
    if (this.options.webPort !== undefined) {
      this.web = createServer((req, res) => this.serve(req, res));
      await new Promise<void>((resolve, reject) => {
        this.web!.once('error', reject);
        this.web!.listen(this.options.webPort, '127.0.0.1', () => resolve());
      });
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.smtp ? this.smtp.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (this.web ? this.web.close(() => resolve()) : resolve()));
    this.web?.closeAllConnections();
  }

  /** Every mail caught so far, oldest first. */
  list(): readonly CaughtMail[] {
    return this.caught.list();
  }

  /** Mail to one address, oldest first. */
  to(address: string): CaughtMail[] {
    return this.caught.list().filter((m) => m.to.includes(address.toLowerCase()));
  }

  /** Resolves with the first mail (already caught or still to come) that matches. */
  waitFor(what: string, match: (m: CaughtMail) => boolean, timeoutInMs = 20_000): Promise<CaughtMail> {
    return this.caught.waitFor(what, match, timeoutInMs);
  }

  // ---- the web view ----------------------------------------------------------------------------------------

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const headers = {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
    };
    if (url.pathname === '/') {
      res
        .writeHead(200, {
          ...headers,
          'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
        })
        .end(this.listPage());
      return;
    }
    const m = /^\/mail\/(\d+)$/.exec(url.pathname);
    const mail = m ? this.caught.list().find((x) => x.id === Number(m[1])) : undefined;
    if (mail) {
      // The mail as its HTML part shows it; no script can run and nothing can load, as in a careful mail client.
      res
        .writeHead(200, {
          ...headers,
          'Content-Security-Policy':
            "default-src 'none'; style-src 'unsafe-inline'; sandbox allow-popups allow-top-navigation-by-user-activation",
        })
        .end(mail.html ?? markup`<pre>${mail.text}</pre>`.html);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found');
  }

  private listPage(): string {
    const rows = [...this.caught.list()].reverse().map(
      (m) =>
        markup`<article>
          <h2><a href="/mail/${m.id}">${m.subject || '(no subject)'}</a></h2>
          <p><small>${m.receivedAt.toISOString()} · from ${m.from} · to ${m.to.join(', ')}</small></p>
          ${
            m.links.length
              ? markup`<ul>
                  ${m.links.map((l) => markup`<li><a href="${l}">${l}</a></li>`)}
                </ul>`
              : ''
          }
        </article>`,
    );
    return markup`<!doctype html>
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>Sandbox mail (${this.caught.list().length})</title>
          <style>
            body {
              font-family: system-ui, sans-serif;
              margin: 16px;
              max-width: 900px;
            }
            article {
              border-bottom: 1px solid #ddd;
              padding: 8px 0;
            }
            h2 {
              font-size: 1.05rem;
              margin: 0;
            }
            li {
              word-break: break-all;
              font-size: 0.85rem;
            }
          </style>
        </head>
        <body>
          <h1>Mail caught by the sandbox</h1>
          <p>Newest first. Nothing here was delivered anywhere. Reload for new mail.</p>
          ${rows.length ? rows : markup`<p>No mail yet.</p>`}
        </body>
      </html>`.html;
  }
}
