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

/** Who must approve, how many, and by when: what a person waiting wants to know (and whom to nudge). */
function approvalLine(view: RequestView): string {
  const a = view.approval;
  if (!a) return 'Waiting for approval…';
  const who = a.approvers.map((e) => e.replace(/^user:/, '')).join(', ');
  const deadline = a.deadline ?? view.approvalDeadline;
  return (
    `Waiting for approval: ${a.approvals} of ${a.required} from ${who || '(no approvers)'}` +
    `${deadline ? `, by ${deadline} (${relative(deadline)})` : ''}…`
  );
}

function progress(view: RequestView): string {
  switch (view.status) {
    case 'submitted':
      return `Request ${view.id} submitted; the policy is deciding…`;
    case 'pending-approval':
      return approvalLine(view);
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

/** What a status line says as it changes: a new approval counts as news too. */
const stateOf = (view: RequestView) => `${view.status}:${view.approval?.approvals ?? ''}`;

/** Thrown when Ctrl-C ends a wait; `jit` has already said how to cancel the request. */
export class WaitInterrupted extends Error {
  constructor(readonly view: RequestView | undefined) {
    super('interrupted');
    this.name = 'WaitInterrupted';
  }
}

/**
 * Polls the request until it is active or final, printing each new status on stderr. Returns the last view;
 * its status is not active or final when the time ran out. On Ctrl-C it says at once that the request goes on and
 * how to cancel it, then throws WaitInterrupted.
 */
export async function waitForAccess(ctx: CliContext, id: string, options: WaitOptions): Promise<RequestView> {
  const started = Date.now();
  let delay = options.firstPollInMs ?? 250;
  let last = '';
  let latest: RequestView | undefined;
  let wake: (() => void) | undefined;
  const onInterrupt = () => {
    const status = latest?.status ?? 'submitted';
    ctx.err(
      `Stopped waiting; request ${id} is still ${status} and goes on without you. Cancel it with: jit revoke ${id}`,
    );
    wake?.();
  };
  if (ctx.signal?.aborted) onInterrupt();
  ctx.signal?.addEventListener('abort', onInterrupt, { once: true });
  try {
    for (;;) {
      if (ctx.signal?.aborted) throw new WaitInterrupted(latest);
      const { body: view } = await ctx.client.call<RequestView>('GET', `requests/${encodeURIComponent(id)}`);
      latest = view;
      if (ctx.signal?.aborted) throw new WaitInterrupted(latest);
      if (stateOf(view) !== last) {
        ctx.err(progress(view));
        last = stateOf(view);
      }
      if (view.status === 'active' || FINAL.has(view.status)) return view;
      const from = view.startAt ? Math.max(started, Date.parse(view.startAt)) : started;
      if (Date.now() > from + options.timeoutInMs) return view;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, delay);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      });
      delay = Math.min(2000, Math.round(delay * 1.5));
    }
  } finally {
    ctx.signal?.removeEventListener('abort', onInterrupt);
  }
}
