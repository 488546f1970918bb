import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import type { MailConfig } from '../config';
import { TransientFailure } from '../domain/errors';
import type { Mailer, MailMessage } from '../domain/ports';

type SmtpConfig = Extract<MailConfig, { mode: 'smtp' }>;

/** Mail through an SMTP server (nodemailer): a relay of the organisation's, or the sandbox's catcher. */
export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;

  constructor(private readonly config: SmtpConfig) {
    this.transport = nodemailer.createTransport({
      host: config.host,
      port: config.port,
      secure: config.tls === 'tls',
      // starttls: refuse to send unless the server upgrades the connection (links in the mail are credentials).
      requireTLS: config.tls === 'starttls',
      ignoreTLS: config.tls === 'none',
      auth: config.user ? { user: config.user, pass: config.password } : undefined,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
  }

  async send(message: MailMessage): Promise<void> {
    try {
      await this.transport.sendMail({
        from: this.config.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
      });
    } catch (err) {
      // Connection trouble and 4xx replies pass with time; the caller decides whether to retry.
      const e = err as { code?: string; responseCode?: number; message?: string };
      if (e.responseCode === undefined || e.responseCode < 500)
        throw new TransientFailure(`SMTP send failed: ${e.code ?? ''} ${e.message ?? String(err)}`.trim());
      throw err;
    }
  }

  close(): void {
    this.transport.close();
  }
}
