/**
 * The approval pages: the page a link opens (shows the request, offers Approve and Deny, changes nothing), the
 * page after a decision, and the page for a refused link. No script at all; the one style sheet is inline and
 * allowed by its hash in the Content-Security-Policy, so nothing else can run or load.
 */
import { createHash } from 'node:crypto';
import type { ApprovalView, Decision } from '../domain/approval';
import { MAX_DECISION_COMMENT_LENGTH } from '../domain/approval';
import type { AccessRequest } from '../domain/types';
import { SafeHtml, markup } from './html';
import { formatDuration } from '../domain/duration';
import type { RulePlacement } from '../domain/networkPath';
import { askFacts, describePorts, describeTime, recordFacts, requestFacts, vmName } from './requestFacts';

const STYLE = `
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;padding:8px;color:#1b1b1b;background:#f6f6f6;line-height:1.4}
main{max-width:640px;margin:0 auto;background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.2rem;margin:0 0 .4rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:.6rem 0}
dt{font-weight:600}
dd{margin:0;white-space:pre-wrap;word-break:break-word}
.record{font-size:.85rem;color:#555}
.opens{margin:.6rem 0;padding:.5rem .7rem;border-left:4px solid #0063b1;background:#f3f7fc}
.status{padding:.5rem .7rem;border-radius:6px;background:#eef3fb}
.ok{background:#e7f4e4}.no{background:#fbeaea}
form{margin:.8rem 0;padding:.7rem;border:1px solid #ddd;border-radius:6px}
form.chosen{border-color:#0063b1;box-shadow:0 0 0 2px #0063b1}
label{display:block;font-weight:600;margin-bottom:.3rem}
textarea{width:100%;min-height:4.5rem;font:inherit;padding:.4rem}
button{font:inherit;font-weight:600;color:#fff;border:0;border-radius:6px;padding:.7rem 1.4rem;margin-top:.6rem;width:100%}
#approve button{background:#107c10}#deny button{background:#a4262c}
@media (min-width:520px){button{width:auto}}
small{color:#555}
`;

/** The CSP source that allows exactly the style element below (its content, byte for byte). */
export const PAGE_STYLE_SOURCE = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;
const STYLE_ELEMENT = new SafeHtml(`<style>${STYLE}</style>`);

function document(title: string, body: SafeHtml): string {
  return markup`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="strict-origin" />
    <title>${title}</title>
    ${STYLE_ELEMENT}
  </head>
  <body>
    <main>${body}</main>
  </body>
</html>`.html;
}

function facts(request: AccessRequest): SafeHtml {
  return factList(requestFacts(request));
}

function factList(pairs: Array<[string, string]>, className?: string): SafeHtml {
  return markup`<dl class="${className ?? ''}">
    ${pairs.map(([label, value]) => markup`<dt>${label}</dt><dd>${value}</dd>`)}
  </dl>`;
}

const nsgName = (id: string) => id.split('/').pop() ?? id;

/**
 * What approving opens, and for how long: the ports from the source to the VM's private addresses, in each NSG
 * in front of it, for the duration from the moment of approval (or from the requested start).
 */
function whatOpens(r: AccessRequest, opens: RulePlacement[] | undefined): string {
  const from = r.sourcePrefix === '*' ? 'any address' : r.sourcePrefix;
  let where: string;
  if (opens?.length) {
    const addresses = [...new Set(opens.flatMap((o) => o.destinations))];
    const nsgs = opens.map((o) => nsgName(o.nsgId));
    where =
      `to ${addresses.join(', ')} (${vmName(r.vmId)}'s private address${addresses.length === 1 ? '' : 'es'}), ` +
      `with a rule in network security group${nsgs.length === 1 ? '' : 's'} ${nsgs.join(' and ')}`;
  } else {
    where = `to ${vmName(r.vmId)}'s private addresses, with a rule in each network security group in front of it`;
  }
  const when = r.startAt
    ? `from ${describeTime(r.startAt)} (the requested start) or from approval if later`
    : 'from the moment it is approved';
  return `If approved, this opens ${describePorts(r)} from ${from} ${where}, for ${formatDuration(r.durationInSeconds)} ${when}. When that time is up, ${opens && opens.length > 1 ? 'the rules are' : 'the rule is'} removed.`;
}

const STATUS_WORDS: Partial<Record<AccessRequest['status'], string>> = {
  approved: 'approved; access is being opened',
  active: 'approved, and access is open',
  scheduled: 'approved, and waits for its start time',
  denied: 'denied',
  'approval-expired': 'closed: nobody decided in time',
  expired: 'approved; its access has since ended',
  revoked: 'revoked',
  failed: 'approved, but access could not be opened',
};

/** The page's model: what the link shows, and which button the approver pressed in the mail (it decides nothing). */
export type DecisionPageModel = ApprovalView & { intent?: string | null };

/** What `GET` on a link shows. It offers the decision; it never makes one. */
export function decisionPage(m: DecisionPageModel): string {
  const r = m.request;
  const title = `Access request from ${r.requester}`;
  const chosen = (d: Decision) => (m.intent === d ? `${d} chosen` : d);
  let state: SafeHtml;
  if (m.earlier) {
    state = markup`<p class="status">
      You ${m.earlier.decision === 'approve' ? 'approved' : 'denied'} this request at
      ${describeTime(m.earlier.decidedAt)}. A link is good for one decision.
    </p>`;
  } else if (r.status !== 'pending-approval') {
    state = markup`<p class="status">
      Already settled: this request is ${STATUS_WORDS[r.status] ?? r.status}${r.statusReason ? ` (${r.statusReason})` : ''}.
      There is nothing left to decide.
    </p>`;
  } else if (!m.form) {
    // Still pending only until the deadline message is handled: the time to decide is over.
    state = markup`<p class="status">
      The time to decide on this request ran out at ${describeTime(r.approvalDeadline)}.
    </p>`;
  } else {
    state = markup`<p class="status">
      Waiting for approval: ${m.approvals} of ${m.required} approval${m.required === 1 ? '' : 's'} so far. You
      are deciding as <strong>${m.decider}</strong>.
    </p>`;
  }
  const forms = m.form
    ? markup`<form id="approve" class="${chosen('approve')}" method="post" action="approvals">
          <input type="hidden" name="token" value="${m.form.token}" />
          <input type="hidden" name="csrf" value="${m.form.formToken}" />
          <input type="hidden" name="decision" value="approve" />
          <label for="approve-comment">Comment (optional)</label>
          <textarea id="approve-comment" name="comment" maxlength="${MAX_DECISION_COMMENT_LENGTH}"></textarea>
          <button type="submit">Approve</button>
        </form>
        <form id="deny" class="${chosen('deny')}" method="post" action="approvals">
          <input type="hidden" name="token" value="${m.form.token}" />
          <input type="hidden" name="csrf" value="${m.form.formToken}" />
          <input type="hidden" name="decision" value="deny" />
          <label for="deny-comment">Reason for denying (the requester sees it)</label>
          <textarea id="deny-comment" name="comment" required maxlength="${MAX_DECISION_COMMENT_LENGTH}"></textarea>
          <button type="submit">Deny</button>
        </form>
        <p><small>Until you press a button, nothing is decided.</small></p>`
    : '';
  return document(
    title,
    // The first screen of a phone: who asks for what, from where, for how long and why; then what it opens.
    markup`<h1>${title}</h1>
      ${factList(askFacts(r))}
      ${m.form ? markup`<p class="opens">${whatOpens(r, m.opens)}</p>` : ''} ${state} ${forms}
      ${factList(recordFacts(r), 'record')}`,
  );
}

export interface DecisionResultModel {
  request: AccessRequest;
  decision: Decision;
  decider: string;
  approvals: number;
  required: number;
}

/** The page after a decision was recorded, saying what it did to the request. */
export function resultPage(m: DecisionResultModel): string {
  const r = m.request;
  const mine = m.decision === 'approve' ? 'approved' : 'denied';
  let outcome: string;
  let tone = 'status';
  if (r.status === 'pending-approval') {
    const missing = m.required - m.approvals;
    outcome = `It still needs ${missing} more approval${missing === 1 ? '' : 's'} (${m.approvals} of ${m.required} so far).`;
  } else if (r.status === 'denied') {
    outcome = `The request is denied and ${r.requester} has been told${r.statusReason ? ` (${r.statusReason})` : ''}.`;
    tone = 'status no';
  } else if (m.decision === 'deny') {
    outcome = `Your denial was recorded, but the request had already been decided: it is ${STATUS_WORDS[r.status] ?? r.status}.`;
  } else {
    outcome = `The request is ${STATUS_WORDS[r.status] ?? r.status}. ${r.requester} has been told.`;
    tone = 'status ok';
  }
  const title = `You ${mine} the request`;
  return document(
    title,
    markup`<h1>${title}</h1>
      <p class="${tone}">${outcome}</p>
      ${facts(r)}`,
  );
}

/** A refused link or decision: what happened, and (for a refusal, not a failure) that nothing was changed. */
export function errorPage(title: string, detail: string, nothingChanged: boolean): string {
  return document(
    title,
    markup`<h1>${title}</h1>
      <p class="status no">${detail}</p>
      ${nothingChanged ? markup`<p>Nothing was changed.</p>` : ''}`,
  );
}
