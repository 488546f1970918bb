import type { WebhookClient } from '../domain/ports';

/**
 * POSTs with Node's fetch, bounded by a timeout (a receiver that hangs must not hold a delivery for minutes) and
 * without following redirects (a webhook URL that moves is a configuration to fix, not a place to send to).
 */
export class FetchWebhookClient implements WebhookClient {
  constructor(private readonly timeoutInMs = 10_000) {}

  async post(
    url: string,
    body: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: string }> {
    const res = await fetch(url, {
      method: 'POST',
      body,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.timeoutInMs),
    });
    // Only the start of an answer is kept: it goes into a log line or a dead-letter reason.
    const text = (await res.text()).slice(0, 500);
    return { status: res.status, body: text };
  }
}
