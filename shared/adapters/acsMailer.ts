import { EmailClient } from '@azure/communication-email';
import type { EmailClientOptions } from '@azure/communication-email';
import type { TokenCredential } from '@azure/core-auth';
import type { MailConfig } from '../config';
import { TransientFailure } from '../domain/errors';
import type { Mailer, MailMessage } from '../domain/ports';

type AcsConfig = Extract<MailConfig, { mode: 'acs' }>;

/**
 * Mail through Azure Communication Services Email, authenticated with the managed identity (the identity needs
 * a role on the Communication Services resource that allows sending mail).
 */
export class AcsMailer implements Mailer {
  private readonly client: EmailClient;
  private readonly pollIntervalInMs?: number;

  constructor(
    private readonly config: AcsConfig,
    credential: TokenCredential,
    options: EmailClientOptions & { pollIntervalInMs?: number } = {},
  ) {
    this.client = new EmailClient(config.endpoint, credential, options);
    this.pollIntervalInMs = options.pollIntervalInMs;
  }

  async send(message: MailMessage): Promise<void> {
    const poller = await this.client.beginSend(
      {
        senderAddress: this.config.from,
        content: { subject: message.subject, plainText: message.text, html: message.html },
        recipients: { to: message.to.map((address) => ({ address })) },
        // Links in these mails are credentials: no click tracking that rewrites them.
        disableUserEngagementTracking: true,
      },
      { updateIntervalInMs: this.pollIntervalInMs },
    );
    const result = await poller.pollUntilDone();
    if (result.status !== 'Succeeded') {
      throw new TransientFailure(
        `Azure Communication Services did not send the mail: ${result.status} ${result.error?.message ?? ''}`.trim(),
      );
    }
  }
}
