/**
 * The mails this system sends, each in plain text and HTML. User-supplied strings (requester, justification,
 * approvers' comments, reasons) reach the HTML only through `markup`, which escapes them.
 */
import type { ApproverMailModel, MailMessage } from '../domain/ports';
import type { AccessRequest } from '../domain/types';
import { markup } from './html';
import type { SafeHtml } from './html';
import { formatDuration } from '../domain/duration';
import { describePorts, describeTime, requestFacts, vmName } from './requestFacts';

/** Subjects are one line: a CR/LF in a user-supplied string must not start a new header. */
const oneLine = (s: string) => s.replace(/[\r\n\t]+/g, ' ').slice(0, 200);

const FONT = 'font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1b1b1b';

function layout(title: string, body: SafeHtml): string {
  return markup`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title}</title>
      </head>
      <body style="${FONT};margin:0;padding:16px;line-height:1.45">
        <div style="max-width:600px;margin:0 auto">${body}</div>
      </body>
    </html>`.html;
}

function factsTable(request: AccessRequest): SafeHtml {
  return markup`<table role="presentation" style="border-collapse:collapse;width:100%;margin:12px 0">
    ${requestFacts(request).map(
      ([label, value]) =>
        markup`<tr>
          <th align="left" valign="top" style="padding:4px 12px 4px 0;white-space:nowrap;font-weight:600">
            ${label}
          </th>
          <td style="padding:4px 0;white-space:pre-wrap;word-break:break-word">${value}</td>
        </tr>`,
    )}
  </table>`;
}

function factsText(request: AccessRequest): string {
  return requestFacts(request)
    .map(([label, value]) => `  ${`${label}:`.padEnd(15)} ${value}`)
    .join('\n');
}

const button = (href: string, label: string, color: string) =>
  markup`<a
    href="${href}"
    style="display:inline-block;padding:10px 20px;margin:4px 8px 4px 0;border-radius:6px;background:${color};color:#ffffff;text-decoration:none;font-weight:600"
    >${label}</a
  >`;

/** To an approver: who asks for what, and the Approve / Deny links (which open a page; nothing is decided by GET). */
export function approverMail(input: ApproverMailModel): MailMessage {
  const r = input.request;
  const what = `${describePorts(r)} on ${vmName(r.vmId)}`;
  const subject = oneLine(`Approve access? ${r.requester} asks for ${what}`);
  const quorum =
    input.required > 1
      ? `${input.required} different approvers must approve (of ${input.approverCount} named by the policy); one denial ends it.`
      : `One approval is enough; one denial ends it.`;
  const groupNote = input.group
    ? `This link went to the mailbox of approver group ${input.group}: whoever uses it must sign in as a member.`
    : '';
  const text = [
    `${r.requester} asks for access to ${what} for ${formatDuration(r.durationInSeconds)}.`,
    '',
    factsText(r),
    '',
    quorum,
    ...(groupNote ? [groupNote] : []),
    '',
    `Approve: ${input.approveUrl}`,
    `Deny:    ${input.denyUrl}`,
    '',
    'Each link opens a page that shows the request; nothing is decided until you press a button there.',
    `The links are for you alone and work once, until ${describeTime(input.expiresAt)}.`,
  ].join('\n');
  const body = markup`<h1 style="font-size:20px;margin:0 0 8px">${r.requester} asks for access</h1>
    <p style="margin:0 0 8px">${what}, for ${formatDuration(r.durationInSeconds)}.</p>
    ${factsTable(r)}
    <p>${quorum}</p>
    ${groupNote ? markup`<p>${groupNote}</p>` : ''}
    <p>${button(input.approveUrl, 'Approve…', '#107c10')}${button(input.denyUrl, 'Deny…', '#a4262c')}</p>
    <p style="font-size:13px;color:#555">
      Each link opens a page that shows the request; nothing is decided until you press a button there. The
      links are for you alone and work once, until ${describeTime(input.expiresAt)}.
    </p>`;
  return { to: [input.to], subject, text, html: layout(subject, body) };
}

/** What the requester is told for each status they hear about. Undefined for statuses nobody is told of. */
function requesterWording(r: AccessRequest): { subject: string; lead: string } | undefined {
  const what = `${describePorts(r)} on ${vmName(r.vmId)}`;
  switch (r.status) {
    case 'pending-approval':
      return {
        subject: `Waiting for approval: ${what}`,
        lead: `Your request for ${what} waits for approval${r.approvalDeadline ? ` until ${describeTime(r.approvalDeadline)}` : ''}.`,
      };
    case 'approved':
      return {
        subject: `Approved: ${what}`,
        lead: `Your request for ${what} was approved. Access opens in a moment; you will get another mail when it is live.`,
      };
    case 'denied':
      return { subject: `Denied: ${what}`, lead: `Your request for ${what} was denied.` };
    case 'approval-expired':
      return {
        subject: `No decision in time: ${what}`,
        lead: `Nobody decided on your request for ${what} in time, so it has lapsed. Ask again if you still need access.`,
      };
    case 'active':
      return {
        subject: `Access is live: ${what}`,
        lead: `Access to ${what} from ${r.sourcePrefix} is open until ${describeTime(r.expiresAt)}.`,
      };
    case 'expired':
      return {
        subject: `Access ended: ${what}`,
        lead: `Your access to ${what} ended at ${describeTime(r.endedAt)}.`,
      };
    case 'revoked':
      return { subject: `Access revoked: ${what}`, lead: `Your access to ${what} was revoked.` };
    case 'failed':
      return {
        subject: `Access could not be granted: ${what}`,
        lead: `Your access to ${what} could not be opened.`,
      };
    default:
      return undefined;
  }
}

/** To the requester, about where their request now stands. `note` adds one line (who was asked, who approved). */
export function requesterMail(request: AccessRequest, note?: string): MailMessage | undefined {
  const w = requesterWording(request);
  if (!w) return undefined;
  const subject = oneLine(w.subject);
  const reasonLabel = request.status === 'denied' ? 'Reason' : 'Why';
  const reason = request.statusReason?.trim();
  const text = [
    w.lead,
    ...(reason ? ['', `${reasonLabel}: ${reason}`] : []),
    ...(note ? ['', note] : []),
    '',
    factsText(request),
  ].join('\n');
  const body = markup`<h1 style="font-size:20px;margin:0 0 8px">${w.subject}</h1>
    <p>${w.lead}</p>
    ${reason ? markup`<p><strong>${reasonLabel}:</strong> <span style="white-space:pre-wrap">${reason}</span></p>` : ''}
    ${note ? markup`<p>${note}</p>` : ''} ${factsTable(request)}`;
  return { to: [request.requester], subject, text, html: layout(subject, body) };
}

/** How a settled request ended, in the words of the mail to the approvers who did not decide. */
function settledWords(r: AccessRequest): string {
  switch (r.status) {
    case 'denied':
      return `was denied${r.statusReason ? ` (${r.statusReason})` : ''}`;
    case 'approval-expired':
      return 'lapsed: nobody decided in time';
    default:
      return `was approved${r.statusReason ? ` (${r.statusReason})` : ''}`;
  }
}

/** To an approver who did not decide, once the request is settled: their link has nothing left to decide. */
export function settledMail(request: AccessRequest, to: string): MailMessage {
  const what = `${describePorts(request)} on ${vmName(request.vmId)}`;
  const subject = oneLine(`No action needed: ${request.requester}'s request for ${what} is settled`);
  const lead = `${request.requester}'s request for ${what} ${settledWords(request)}. Your approval link has nothing left to decide.`;
  const text = [lead, '', factsText(request)].join('\n');
  const body = markup`<h1 style="font-size:20px;margin:0 0 8px">No action needed</h1>
    <p>${lead}</p>
    ${factsTable(request)}`;
  return { to: [to], subject, text, html: layout(subject, body) };
}
