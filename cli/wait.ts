/** `--wait`: follow a request until it is live or will never be, telling the person what is happening. */
import type { CliContext } from './context';
import { relative } from './render';
import { FINAL } from './types';
import type { RequestView } from './types';

export interface WaitOptions {
  /** How long to wait for access to go live, counted from its start time when it has one. */
  timeoutInMs: number;
  /** First pause between polls; it grows to 2 s (the API's Retry-After on 202 is 1 s). */
  firstPollInMs?: number;
}

function progress(view: RequestView): string {
  switch (view.status) {
    case 'submitted':
      return `Request ${view.id} submitted; the policy is deciding…`;
    case 'pending-approval':
      return 'Waiting for approval…';
    case 'scheduled':
      return `Approved; access opens at ${view.startAt ?? '?'} (${view.startAt ? relative(view.startAt) : ''})…`;
    case 'approved':
      return 'Approved; opening the network security group rules…';
    case 'active':
      return 'Live.';
    default:
      return `${view.status[0]?.toUpperCase() ?? ''}${view.status.slice(1)}${view.statusReason ? `: ${view.statusReason}` : '.'}`;
  }
}

/**
 * Polls the request until it is active or final, printing each new status on stderr. Returns the last view;
 * its status is not active or final when the time ran out.
 */
export async function waitForAccess(ctx: CliContext, id: string, options: WaitOptions): Promise<RequestView> {
  const started = Date.now();
  let delay = options.firstPollInMs ?? 250;
  let last = '';
  for (;;) {
    const { body: view } = await ctx.client.call<RequestView>('GET', `requests/${encodeURIComponent(id)}`);
    if (view.status !== last) {
      ctx.err(progress(view));
      last = view.status;
    }
    if (view.status === 'active' || FINAL.has(view.status)) return view;
    const from = view.startAt ? Math.max(started, Date.parse(view.startAt)) : started;
    if (Date.now() > from + options.timeoutInMs) return view;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(2000, Math.round(delay * 1.5));
  }
}
