import { looksLikeMailAddress } from '../domain/approval';
import { FeatureUnavailable } from '../domain/errors';
import type { MailComposer, Mailer, Notifier } from '../domain/ports';
import type { AccessRequest } from '../domain/types';
import type { Deps } from './deps';

/** What telling the requester needs. */
export type NotifyPorts = Pick<Deps, 'notifier' | 'log'>;

/**
 * Tells the requester, after a transition has happened. A failure to tell is logged and never undoes or fails the
 * transition: access that is live must not be rolled back because a mail server is down.
 */
export async function notifyRequester(
  deps: NotifyPorts,
  request: AccessRequest,
  note?: string,
): Promise<void> {
  try {
    await deps.notifier.requestChanged(request, note);
  } catch (err) {
    if (err instanceof FeatureUnavailable) {
      // Mail is switched off by a broken setting (reported when the app started): not a failure of this request.
      deps.log.warn('notify.skipped', {
        requestId: request.id,
        status: request.status,
        feature: err.feature,
      });
      return;
    }
    deps.log.warn('notify.failed', {
      requestId: request.id,
      status: request.status,
      error: String((err as Error)?.message ?? err),
    });
  }
}

/** Mails the requester about each status they hear of. Requesters that are apps (no mail address) are skipped. */
export class MailNotifier implements Notifier {
  constructor(
    private readonly mailer: Mailer,
    private readonly compose: MailComposer,
  ) {}

  async requestChanged(request: AccessRequest, note?: string): Promise<void> {
    if (!looksLikeMailAddress(request.requester)) return;
    const mail = this.compose.requesterMail(request, note);
    if (mail) await this.mailer.send(mail);
  }
}
