import { looksLikeMailAddress } from '../domain/approval';
import type { Mailer, Notifier } from '../domain/ports';
import type { AccessRequest } from '../domain/types';
import { requesterMail } from '../views/mail';
import type { Deps } from './deps';

/**
 * Tells the requester, after a transition has happened. A failure to tell is logged and never undoes or fails the
 * transition: access that is live must not be rolled back because a mail server is down.
 */
export async function notifyRequester(deps: Deps, request: AccessRequest, note?: string): Promise<void> {
  if (!deps.notifier) return;
  try {
    await deps.notifier.requestChanged(request, note);
  } catch (err) {
    deps.log.warn('notify.failed', {
      requestId: request.id,
      status: request.status,
      error: String((err as Error)?.message ?? err),
    });
  }
}

/** Mails the requester about each status they hear of. Requesters that are apps (no mail address) are skipped. */
export class MailNotifier implements Notifier {
  constructor(private readonly mailer: Mailer) {}

  async requestChanged(request: AccessRequest, note?: string): Promise<void> {
    if (!looksLikeMailAddress(request.requester)) return;
    const mail = requesterMail(request, note);
    if (mail) await this.mailer.send(mail);
  }
}
