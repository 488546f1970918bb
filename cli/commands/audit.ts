import { Argument } from 'commander';
import type { Command } from 'commander';
import { CHAIN_TAIL, RECORD_ORDER } from '../../shared/domain/auditQuery';
import type { AuditPage, AuditRecord } from '../../shared/domain/auditQuery';
import { verifyReportLines } from '../../shared/domain/verifyReportText';
import { resolveVm } from '../args';
import type { CliContext, Runner as Run } from '../context';
import { csvRecord } from '../csv';
import { UsageError } from '../errors';
import { EXIT } from '../exitCodes';
import type { VerifyReport } from '../types';

interface AuditOptions {
  from?: string;
  to?: string;
  vm?: string;
  actor?: string;
  requestId?: string;
  pageSize: string;
}

interface VerifyOptions {
  from: string;
  to?: string;
}

/** The CSV columns, in order. Every stored column of the known vocabulary; `--output json` carries any other. */
const CSV_COLUMNS = [...RECORD_ORDER, ...CHAIN_TAIL] as const;

/**
 * `jit audit` and `jit audit verify`. One command with an optional `verify` operand rather than a subcommand:
 * a subcommand's --from/--to would be taken by the parent's options of the same name, and making options
 * positional would stop global options (`-o json`) from working after the command name.
 */
export function register(program: Command, run: Run): void {
  program
    .command('audit')
    .description(
      'the audit trail, newest first; `audit verify` checks its hash chain (Jit.Auditor or Jit.Admin)',
    )
    .addArgument(
      new Argument('[verify]', 'recompute the hash chain over whole UTC days instead').choices(['verify']),
    )
    .option('--from <time>', 'events at or after this date or date-time (2026-03-01, 2026-03-01T09:00Z)')
    .option('--to <time>', 'events before this date or date-time (verify: default now)')
    .option('--vm <vm>', 'only events about this VM: its resource id, or <resource group>/<name>')
    .option(
      '--actor <name>',
      'only events by this person or component (alice@contoso.com, system:reconciler)',
    )
    .option('--request-id <id>', 'only events of this request')
    .option('--page-size <n>', 'events fetched per API call', '500')
    .addHelpText(
      'after',
      [
        '',
        'Output (-o): table (default), json (JSON Lines: one event object per line), csv (RFC 4180, with a header).',
        'Events stream page by page as the API returns them, so a year of events is never held in memory.',
        'verify exits 0 when the chain is intact and matches the daily anchors kept outside the table, and 8 when',
        'rows were edited or deleted, or a day was rewritten after it was anchored (it says where).',
        'To check the table itself without trusting the app, run npm run audit:verify in the server repository.',
        '',
        'Examples:',
        '  jit audit --vm prod-rg/prod-db --from 2026-03-01 --to 2026-04-01',
        '  jit audit --actor alice@contoso.com --from 2026-03-01 -o csv > alice-march.csv',
        '  jit audit --from 2026-03-14 --to 2026-03-15 -o json | jq -c "select(.action == \\"grant.activated\\")"',
        '  jit audit verify --from 2026-03-01 --to 2026-04-01',
      ].join('\n'),
    )
    .action(async (check: string | undefined, opts: AuditOptions, cmd: Command) =>
      run(cmd, async (ctx) => {
        if (check !== 'verify') {
          const vm = opts.vm === undefined ? undefined : resolveVm(opts.vm, ctx.options.subscription);
          return listEvents(ctx, { ...opts, vm });
        }
        const misplaced = (['vm', 'actor', 'requestId'] as const).filter((o) => opts[o] !== undefined);
        if (misplaced.length) {
          throw new UsageError('audit verify checks whole days: --vm, --actor and --request-id do not apply');
        }
        if (!opts.from)
          throw new UsageError('audit verify needs --from', 'e.g. jit audit verify --from 2026-03-01');
        return verify(ctx, { ...opts, from: opts.from });
      }),
    );
}

async function listEvents(ctx: CliContext, opts: AuditOptions): Promise<number> {
  const params = new URLSearchParams();
  for (const [name, value] of [
    ['from', opts.from],
    ['to', opts.to],
    ['vm', opts.vm],
    ['actor', opts.actor],
    ['requestId', opts.requestId],
    ['pageSize', opts.pageSize],
  ] as const) {
    if (value !== undefined) params.set(name, value);
  }
  const format = ctx.options.output;
  if (format === 'csv') ctx.out(csvRecord(CSV_COLUMNS) + '\r');
  if (format === 'table' || format === 'text') ctx.out(TABLE_HEADER);
  let token: string | undefined;
  do {
    if (token) params.set('continuationToken', token);
    const { body } = await ctx.client.call<AuditPage>('GET', `audit?${params.toString()}`);
    // Each page is written as it arrives and then dropped: memory holds one page, whatever the range.
    if (body.items.length) ctx.out(body.items.map((e) => formatEvent(e, format)).join('\n'));
    token = body.continuationToken;
  } while (token);
  return EXIT.ok;
}

function formatEvent(e: AuditRecord, format: string): string {
  if (format === 'json') return JSON.stringify(e);
  const fields = e as unknown as Record<string, string | number | number[] | undefined>;
  if (format === 'csv') return csvRecord(CSV_COLUMNS.map((c) => fields[c])) + '\r';
  return tableRow(e);
}

const WIDTHS = [24, 24, 26, 26, 16, 10];
const cell = (text: string, width: number) =>
  text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
const TABLE_HEADER = ['TIME', 'ACTION', 'ACTOR', 'REQUEST', 'VM', 'PORTS', 'WHAT']
  .map((h, i) => (i < WIDTHS.length ? cell(h, WIDTHS[i]!) : h))
  .join(' ');

/** One line per event: the columns a person scans, then what happened, on one line. */
function tableRow(e: AuditRecord): string {
  const name = (id?: string) => id?.split('/').pop() ?? '';
  const what = [
    e.nsg && `${name(e.nsg)}/${e.rule ?? ''} priority ${e.priority ?? '?'}`,
    e.expirySequenceNumber && `expiry message ${e.expirySequenceNumber}`,
    e.expiresAt && `until ${e.expiresAt}`,
    e.action === 'request.submitted' && e.sourcePrefix && `from ${e.sourcePrefix}`,
    e.clientAddress && `client ${e.clientAddress}`,
    e.justification && `justification: ${e.justification}`,
    e.detail,
  ]
    .filter(Boolean)
    .join('; ')
    .replace(/\s+/g, ' ');
  return [e.time, e.action, e.actor, e.requestId ?? '', name(e.vm), (e.ports ?? []).join(',')]
    .map((v, i) => cell(String(v), WIDTHS[i]!))
    .concat(what)
    .join(' ');
}

async function verify(ctx: CliContext, opts: VerifyOptions): Promise<number> {
  const params = new URLSearchParams({ from: opts.from });
  if (opts.to) params.set('to', opts.to);
  const report = (await ctx.client.call<VerifyReport>('GET', `audit/verify?${params.toString()}`)).body;
  printVerifyReport(ctx, report);
  return report.ok ? EXIT.ok : EXIT.auditBroken;
}

/** A verification report, for a person or (`-o json`) a script (shared/domain/verifyReportText.ts). */
function printVerifyReport(
  ctx: Pick<CliContext, 'out'> & { options: { output: string } },
  report: VerifyReport,
): void {
  for (const line of verifyReportLines(report, ctx.options.output)) ctx.out(line);
}
