/**
 * `npm run audit:verify -- --from 2026-03-01 --to 2026-04-01 --table-endpoint https://<account>.table.core.windows.net`:
 * recomputes the audit hash chain from the table itself and compares each day with its anchor in blob storage, as
 * the signed-in Azure CLI user (who needs Storage Table Data Reader and Storage Blob Data Reader), or with a
 * connection string (the sandbox). `jit audit verify` asks the app; this asks nobody but
 * the table, so a compromised app cannot answer "intact". It runs the app's own verification code, which is why
 * it lives in this repository and not in the `jit` package (that one carries no storage SDK).
 */
import { AzureCliCredential } from '@azure/identity';
import { Command, CommanderError, Option } from 'commander';
import { BlobAuditAnchors } from '../shared/adapters/auditAnchorBlobs';
import { AuditTable } from '../shared/adapters/auditTable';
import { tableClient } from '../shared/adapters/tableStorage';
import { parseVerifyRange } from '../shared/domain/auditQuery';
import { InvalidRequest } from '../shared/domain/errors';
import { TABLES } from '../shared/names';
import { verifyChain } from '../shared/usecases/audit';
import { verifyReportLines } from '../shared/domain/verifyReportText';

interface Options {
  from: string;
  to?: string;
  connectionString?: string;
  tableEndpoint?: string;
  blobEndpoint?: string;
  output: 'text' | 'json';
}

/** Runs the check; returns the exit code `jit audit verify` would: 0 intact, 8 broken, 2 usage. */
export async function verifyAuditTable(
  argv: string[],
  io: { out: (t: string) => void; err: (t: string) => void },
): Promise<number> {
  const program = new Command('audit:verify')
    .description('recompute the audit hash chain from the table itself, trusting nothing the app says')
    .requiredOption('--from <date>', 'first UTC day (2026-03-01)')
    .option('--to <date>', 'end, exclusive (default now)')
    .option('--connection-string <cs>', 'a storage connection string (the sandbox)')
    .option('--table-endpoint <url>', 'https://<account>.table.core.windows.net, read as the Azure CLI user')
    .option(
      '--blob-endpoint <url>',
      "where the daily anchors are (default: the same account's blob endpoint; needs Storage Blob Data Reader)",
    )
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'))
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const opts = program.opts<Options>();
  if (!opts.connectionString === !opts.tableEndpoint) {
    io.err('audit:verify: give one of --connection-string or --table-endpoint');
    return 2;
  }
  const params: Array<[string, string]> = [['from', opts.from]];
  if (opts.to) params.push(['to', opts.to]);
  let range;
  try {
    range = parseVerifyRange(params, new Date());
  } catch (err) {
    if (!(err instanceof InvalidRequest)) throw err;
    io.err(`audit:verify: ${err.problems.map((p) => `--${p.field}: ${p.reason}`).join('; ')}`);
    return 2;
  }
  const client = opts.connectionString
    ? tableClient({ kind: 'connectionString', connectionString: opts.connectionString }, TABLES.audit, () => {
        throw new Error('a connection string needs no credential');
      })
    : tableClient(
        { kind: 'identity', endpoint: opts.tableEndpoint! },
        TABLES.audit,
        () => new AzureCliCredential(),
      );
  // The anchors outside the table, in the same account (a connection string names its blob endpoint).
  const anchors = opts.connectionString
    ? BlobAuditAnchors.fromConnection(
        { kind: 'connectionString', connectionString: opts.connectionString },
        () => {
          throw new Error('a connection string needs no credential');
        },
      )
    : BlobAuditAnchors.fromConnection(
        { kind: 'identity', endpoint: opts.blobEndpoint ?? opts.tableEndpoint!.replace('.table.', '.blob.') },
        () => new AzureCliCredential(),
      );
  const report = await verifyChain(new AuditTable(client, { now: () => new Date() }), range, anchors);
  for (const line of verifyReportLines(report, opts.output)) io.out(line);
  return report.ok ? 0 : 8;
}

if (require.main === module) {
  verifyAuditTable(process.argv.slice(2), { out: console.log, err: console.error }).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
