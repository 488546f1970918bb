/**
 * The approval pages: the page a link opens (shows the request, offers Approve and Deny, changes nothing), the
 * page after a decision, and the page for a refused link. No script at all; the one style sheet is inline and
 * allowed by its hash in the Content-Security-Policy, so nothing else can run or load.
 */
import { createHash } from 'node:crypto';
import type { ApprovalDecision, Decision } from '../domain/approval';
import { MAX_DECISION_COMMENT_LENGTH } from '../domain/approval';
import type { AccessRequest } from '../domain/types';
import { SafeHtml, markup } from './html';
import { describePorts, describeTime, requestFacts, vmName } from './requestFacts';

const STYLE = `
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;padding:16px;color:#1b1b1b;background:#f6f6f6;line-height:1.45}
main{max-width:640px;margin:0 auto;background:#fff;border-radius:8px;padding:16px 20px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.3rem;margin:0 0 .5rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:1rem 0}
dt{font-weight:600}
dd{margin:0;white-space:pre-wrap;word-break:break-word}
.status{padding:.6rem .8rem;border-radius:6px;background:#eef3fb}
.ok{background:#e7f4e4}.no{background:#fbeaea}
form{margin:1rem 0;padding:.8rem;border:1px solid #ddd;border-radius:6px}
form:target{border-color:#0063b1;box-shadow:0 0 0 2px #0063b1}
label{display:block;font-weight:600;margin-bottom:.3rem}
textarea{width:100%;min-height:4.5rem;font:inherit;padding:.4rem}
button{font:inherit;font-weight:600;color:#fff;border:0;border-radius:6px;padding:.7rem 1.4rem;margin-top:.6rem;width:100%}
.approve button{background:#107c10}.deny button{background:#a4262c}
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
  return markup`<dl>
    ${requestFacts(request).map(([label, value]) => markup`<dt>${label}</dt><dd>${value}</dd>`)}
  </dl>`;
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

export interface DecisionPageModel {
  request: AccessRequest;
  /** Who is deciding (the approver the link names, or the signed-in member of the group it names). */
  decider: string;
  approvals: number;
  required: number;
  /** This approver's earlier decision, if any: the link has been used. */
  earlier?: ApprovalDecision;
  /** Present when a decision can be made now: the approval token and the form token bound to it. */
  form?: { token: string; formToken: string };
}

/** What `GET` on a link shows. It offers the decision; it never makes one. */
export function decisionPage(m: DecisionPageModel): string {
  const r = m.request;
  const title = `Access request from ${r.requester}`;
  let state: SafeHtml;
  if (m.earlier) {
    state = markup`<p class="status">
      You ${m.earlier.decision === 'approve' ? 'approved' : 'denied'} this request at
      ${describeTime(m.earlier.decidedAt)}. A link is good for one decision.
    </p>`;
  } else if (r.status !== 'pending-approval') {
    state = markup`<p class="status">
      This request is ${STATUS_WORDS[r.status] ?? r.status}. There is nothing left to decide.
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
    ? markup`<form id="approve" class="approve" method="post" action="approvals">
          <input type="hidden" name="token" value="${m.form.token}" />
          <input type="hidden" name="csrf" value="${m.form.formToken}" />
          <input type="hidden" name="decision" value="approve" />
          <label for="approve-comment">Comment (optional)</label>
          <textarea id="approve-comment" name="comment" maxlength="${MAX_DECISION_COMMENT_LENGTH}"></textarea>
          <button type="submit">Approve</button>
        </form>
        <form id="deny" class="deny" method="post" action="approvals">
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
    markup`<h1>${title}</h1>
      <p>${describePorts(r)} on ${vmName(r.vmId)}</p>
      ${facts(r)} ${state} ${forms}`,
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
