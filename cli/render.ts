/** How requests are shown: detail lines for a person, rows for `table`/`csv`, one JSON document for scripts. */
import { parseResourceId } from '../shared/domain/resourceId';
import { formatDuration } from '../shared/domain/duration';
import type { CliContext } from './context';
import type { RequestView } from './types';

/** `rg/name` for a VM id (what people call it); the id itself if it does not parse. */
export function vmName(vmId: string): string {
  try {
    const r = parseResourceId(vmId);
    return `${r.resourceGroup}/${r.name}`;
  } catch {
    return vmId;
  }
}

/** "in 1h29m" / "3m ago", relative to now. */
export function relative(iso: string, now = Date.now()): string {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (seconds === 0) return 'now';
  return seconds > 0 ? `in ${formatDuration(seconds)}` : `${formatDuration(-seconds)} ago`;
}

/** The VM's private addresses the rules open: what to connect to. */
export function addressesOf(view: RequestView): string[] {
  return [...new Set((view.rules ?? []).flatMap((r) => r.destinationAddresses ?? []))];
}

/** One request in detail, for a person. */
function detailLines(view: RequestView): string[] {
  const lines = [`${view.id}  ${view.status}`, `  vm       ${vmName(view.vmId)}  (${view.vmId})`];
  lines.push(`  ports    ${view.ports.join(', ')}/${view.protocol} from ${view.sourcePrefix}`);
  if (view.startAt) lines.push(`  starts   ${view.startAt} (${relative(view.startAt)})`);
  if (view.expiresAt) lines.push(`  expires  ${view.expiresAt} (${relative(view.expiresAt)})`);
  else lines.push(`  for      ${formatDuration(view.durationInSeconds)}`);
  if (view.endedAt) lines.push(`  ended    ${view.endedAt}${view.revokedBy ? ` by ${view.revokedBy}` : ''}`);
  if (view.statusReason) lines.push(`  reason   ${view.statusReason}`);
  if (view.status === 'pending-approval' && view.approval) {
    const a = view.approval;
    lines.push(
      `  approval ${a.approvals} of ${a.required} from ${a.approvers.map((e) => e.replace(/^user:/, '')).join(', ')}` +
        `${a.deadline ? `, by ${a.deadline} (${relative(a.deadline)})` : ''}`,
    );
  }
  for (const d of decisionLines(view)) lines.push(`  ${d}`);
  for (const r of view.rules ?? []) {
    lines.push(`  rule     ${r.ruleName} priority ${r.priority} (${r.state}) in ${r.nsgId}`);
    // A rule that lets nothing in, or one that should be closed and is not, is what the person must not miss.
    if (r.effective === false)
      lines.push(`           not effective: shadowed by ${r.shadowedBy ?? 'a deny rule'}`);
    if (r.closeBlocked) lines.push(`           still open: ${r.closeBlocked}`);
  }
  return lines;
}

/** Each approver's decision with their comment: how an approver's note reaches the requester. */
export function decisionLines(view: RequestView): string[] {
  return (view.approval?.decisions ?? []).map(
    (d) =>
      `${d.decision === 'approve' ? 'approved' : 'denied'} by ${d.approver} at ${d.decidedAt}` +
      `${d.comment ? `: "${d.comment}"` : ''}`,
  );
}

const COLUMNS = ['id', 'status', 'vm', 'ports', 'from', 'when'] as const;

function row(view: RequestView): Record<(typeof COLUMNS)[number], string> {
  let when = `created ${view.createdAt}`;
  if (view.status === 'active' && view.expiresAt) when = `until ${view.expiresAt}`;
  else if (view.status === 'scheduled' && view.startAt) when = `starts ${view.startAt}`;
  else if (view.endedAt) when = `ended ${view.endedAt}`;
  return {
    id: view.id,
    status: view.status,
    vm: vmName(view.vmId),
    ports: view.ports.join(','),
    from: view.sourcePrefix,
    when,
  };
}

/** RFC 4180 quoting: only fields holding a comma, a quote or a line break are quoted, quotes doubled. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Requests as rows: aligned columns (`text`, `table`) or CSV with a header. */
export function printRows(ctx: CliContext, views: RequestView[]): void {
  const rows = views.map(row);
  if (ctx.options.output === 'csv') {
    ctx.out(COLUMNS.join(','));
    for (const r of rows) ctx.out(COLUMNS.map((c) => csvField(r[c])).join(','));
    return;
  }
  const widths = COLUMNS.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  ctx.out(line(COLUMNS.map((c) => c.toUpperCase())));
  for (const r of rows) ctx.out(line(COLUMNS.map((c) => r[c])));
}

/** One request: JSON, a row (`table`, `csv`), or detail lines. */
export function printRequest(ctx: CliContext, view: RequestView, extra: Record<string, unknown> = {}): void {
  if (ctx.options.output === 'json') return ctx.out(JSON.stringify({ ...view, ...extra }, null, 2));
  if (ctx.options.output === 'table' || ctx.options.output === 'csv') return printRows(ctx, [view]);
  for (const l of detailLines(view)) ctx.out(l);
}
