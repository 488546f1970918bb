import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { formatPolicyProblem } from '../../shared/domain/errors';
import type { PolicyProblem } from '../../shared/domain/errors';
import { resolveVm } from '../args';
import type { CliContext, Runner as Run } from '../context';
import { ApiError, UsageError } from '../errors';
import { EXIT } from '../exitCodes';
import type { AccessExplanation, PolicyChangeResult, PolicyEntry, PolicyPortEntry } from '../types';

/**
 * `jit policy …`: policies as code. `apply` sends a file (YAML or JSON) as it is, so the API's line numbers are
 * the file's; `list` prints the set as the YAML `apply` takes back.
 */
export function register(program: Command, run: Run): void {
  const policy = program
    .command('policy')
    .description('manage policies (Jit.Admin), or explain which policy applies to a VM');

  policy
    .command('apply')
    .description('replace the policy set with a file: adds, changes and removes; prints what changed')
    .requiredOption('-f, --file <file>', 'the policy document (.yaml, .yml or .json)')
    .option('--dry-run', 'print what would change, change nothing')
    .addHelpText(
      'after',
      '\nExamples:\n  jit policy apply -f policies.yaml --dry-run\n  jit policy apply -f policies.yaml',
    )
    .action(async (opts: { file: string; dryRun?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        let text: string;
        try {
          text = await readFile(opts.file, 'utf8');
        } catch (err) {
          throw new UsageError(`cannot read ${opts.file}: ${(err as Error).message}`);
        }
        const contentType = /\.json$/i.test(opts.file) ? 'application/json' : 'application/yaml';
        let result: PolicyChangeResult;
        try {
          result = (
            await ctx.client.call<PolicyChangeResult>(
              'PUT',
              `policies${opts.dryRun ? '?dryRun=true' : ''}`,
              text,
              { contentType },
            )
          ).body;
        } catch (err) {
          return printDocumentProblems(ctx, err, opts.file);
        }
        printChange(ctx, result);
        return EXIT.ok;
      }),
    );

  policy
    .command('list')
    .description('print the policy set as YAML (the form `apply` takes), or JSON with --output json')
    .action(async (_opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        // The API writes the YAML itself (with the schema line editors use), so jit prints what apply takes.
        const json = ctx.options.output === 'json';
        const { body } = await ctx.client.call<unknown>('GET', 'policies', undefined, {
          accept: json ? 'application/json' : 'application/yaml',
        });
        ctx.out(json ? JSON.stringify(body, null, 2) : String(body).trimEnd());
        return EXIT.ok;
      }),
    );

  policy
    .command('show')
    .description('print the policy of one scope (subscription, resource group or VM id)')
    .argument('<scope>', 'ARM id of the scope')
    .action(async (scope: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { body } = await ctx.client.call<PolicyEntry>(
          'GET',
          `policies?scope=${encodeURIComponent(scope)}`,
        );
        ctx.out(
          ctx.options.output === 'json'
            ? JSON.stringify(body, null, 2)
            : stringify({ policies: [body] }, { lineWidth: 0 }).trimEnd(),
        );
        return EXIT.ok;
      }),
    );

  policy
    .command('delete')
    .description('remove the policy of one scope; live grants under it run to their expiry')
    .argument('<scope>', 'ARM id of the scope')
    .option('--dry-run', 'print what would change, change nothing')
    .action(async (scope: string, opts: { dryRun?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const query = `scope=${encodeURIComponent(scope)}${opts.dryRun ? '&dryRun=true' : ''}`;
        printChange(ctx, (await ctx.client.call<PolicyChangeResult>('DELETE', `policies?${query}`)).body);
        return EXIT.ok;
      }),
    );

  policy
    .command('explain')
    .description('which policy decides for a VM and why: the scopes checked in order, the port, the approval')
    .argument('<vm>', 'the VM: its resource id, or <resource group>/<name> in the default subscription')
    .option('-p, --port <port>', 'the port to ask about')
    .option('--protocol <protocol>', 'Tcp or Udp', 'Tcp')
    .addHelpText(
      'after',
      '\nExamples:\n  jit policy explain prod-rg/db1 --port 22\n  jit policy explain /subscriptions/…/resourceGroups/prod-rg/providers/Microsoft.Compute/virtualMachines/db1',
    )
    .action(async (vm: string, opts: { port?: string; protocol: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const query = new URLSearchParams({
          vm: resolveVm(vm, ctx.options.subscription),
          ...(opts.port ? { port: opts.port, protocol: opts.protocol } : {}),
        });
        const { body } = await ctx.client.call<AccessExplanation>(
          'GET',
          `policies/explain?${query.toString()}`,
        );
        if (ctx.options.output === 'json') ctx.out(JSON.stringify(body, null, 2));
        else printExplanation(ctx, body);
        return EXIT.ok;
      }),
    );
}

/** A refused document: each problem as `file:line:column: field: reason [rule]`, naming the local file. */
function printDocumentProblems(ctx: CliContext, err: unknown, file: string): number {
  const problems =
    err instanceof ApiError ? (err.apiProblem.errors as PolicyProblem[] | undefined) : undefined;
  if (!(err instanceof ApiError) || err.status !== 400 || !problems?.every((p) => typeof p.line === 'number'))
    throw err;
  if (ctx.options.output === 'json') {
    ctx.err(JSON.stringify({ ...err.apiProblem, errors: problems.map((p) => ({ ...p, source: file })) }));
    return EXIT.usage;
  }
  for (const p of problems) ctx.err(formatPolicyProblem({ ...p, source: file }));
  ctx.err(`jit: ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was applied`);
  return EXIT.usage;
}

function printChange(ctx: CliContext, result: PolicyChangeResult): void {
  if (ctx.options.output === 'json') return ctx.out(JSON.stringify(result, null, 2));
  for (const e of result.added) ctx.out(`+ added    ${e.scope}`);
  for (const c of result.changed) {
    ctx.out(`~ changed  ${c.scope}`);
    for (const f of c.fields) ctx.out(`    ${f.field}: ${show(f.before)} -> ${show(f.after)}`);
  }
  for (const e of result.removed) ctx.out(`- removed  ${e.scope}`);
  const summary = `${result.added.length} added, ${result.changed.length} changed, ${result.removed.length} removed, ${result.unchanged} unchanged`;
  ctx.out(result.dryRun ? `${summary} (dry run: nothing applied)` : summary);
  for (const w of result.warnings) ctx.err(`jit: warning: ${w}`);
}

const isPort = (v: unknown): v is PolicyPortEntry =>
  typeof v === 'object' && v !== null && 'port' in v && 'maxDuration' in v;
const portText = (p: PolicyPortEntry) => `${p.port}/${p.protocol} ${p.maxDuration}`;

/** A value of a changed field, as a reviewer reads it. */
function show(v: unknown): string {
  if (v === undefined) return '(none)';
  if (Array.isArray(v)) return `[${v.map((x) => (isPort(x) ? portText(x) : show(x))).join(', ')}]`;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

const LEVEL: Record<string, string> = {
  vm: 'VM',
  resourceGroup: 'resource group',
  subscription: 'subscription',
};

function printExplanation(ctx: CliContext, e: AccessExplanation): void {
  ctx.out(`VM ${e.vm}`);
  ctx.out('Scopes checked, most specific first (the first with a policy decides):');
  for (const c of e.checked) {
    const state = c.decides ? 'policy, decides' : c.hasPolicy ? 'policy, not used' : 'no policy';
    ctx.out(`  ${LEVEL[c.level]!.padEnd(15)} ${c.scope}  (${state})`);
  }
  const p = e.policy;
  if (!p) return ctx.out('No policy covers this VM: every request for it is refused.');
  ctx.out(`Decided by ${p.scope}${p.description ? `: ${p.description}` : ''}`);
  if (e.port) {
    ctx.out(
      e.port.allowed
        ? `  port ${e.port.port}/${e.port.protocol}: allowed, for at most ${e.port.maxDuration}`
        : `  port ${e.port.port}/${e.port.protocol}: not allowed by this policy (broader policies do not add ports to it)`,
    );
  }
  ctx.out(`  ports:         ${p.ports.map(portText).join(', ')}`);
  ctx.out(`  sources:       ${p.allowedSourcePrefixes.join(', ')}`);
  ctx.out(
    `  requesters:    ${p.requesters.join(', ')}${e.callerIsRequester ? ' (you are one)' : ' (you are not one)'}`,
  );
  ctx.out(
    `  approval:      ${
      p.approval.mode === 'manual'
        ? `manual, ${p.approval.required} of ${p.approval.approvers.join(', ')}, within ${p.approval.timeout}`
        : 'automatic'
    }`,
  );
  ctx.out(
    `  justification: ${p.justification.required ? 'required' : 'optional'}${p.justification.pattern ? `, matching ${p.justification.pattern}` : ''}`,
  );
  ctx.out(`  enforce:       ${p.enforce ? 'yes: the ports stay closed unless granted' : 'no'}`);
  if (p.cutSessions) ctx.out('  cut sessions:  yes: the end of a grant cuts established connections');
  for (const w of e.warnings ?? []) ctx.err(`jit: warning: ${w}`);
}
