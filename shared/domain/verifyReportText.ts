import type { VerifyReport } from './auditQuery';

/**
 * An audit verification report as lines of text, for a person or (`json`) a script: what `jit audit verify` and the
 * operators' ops/verifyAudit.ts both print, so the two read the same. In the domain (not views/) because the CLI's
 * package carries only the domain of shared/.
 */
export function verifyReportLines(report: VerifyReport, output: string): string[] {
  if (output === 'json') return [JSON.stringify(report, null, 2)];
  const lines: string[] = [];
  const range = `${report.fromDay} … ${report.toDay}`;
  const days = report.days.length;
  if (report.ok) {
    lines.push(
      `audit chain ${range}: intact — ${report.events} events in ${days} day(s)` +
        (report.anchors.checked
          ? `, ${report.anchors.anchoredDays} matching their anchors`
          : ', anchors not checked'),
    );
  } else {
    lines.push(`audit chain ${range}: BROKEN — ${report.problemCount} problem(s) in ${report.events} events`);
    const first = report.firstBreak!;
    lines.push(`first broken link: ${first.day}${first.seq ? ` #${first.seq}` : ''} (${first.kind})`);
    for (const p of report.problems) lines.push(`  ${p.kind.padEnd(16)} ${p.message}`);
  }
  for (const d of report.days)
    lines.push(
      `  ${d.day}  ${String(d.events).padStart(6)} events  head #${d.headSeq ?? '-'} ${d.headHash ?? ''}${d.anchored ? '  anchored' : ''}`,
    );
  return lines;
}
