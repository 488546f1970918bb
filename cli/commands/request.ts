import { Option } from 'commander';
import type { Command } from 'commander';
import { collectPort, parseFor, parseStart, resolveVm } from '../args';
import { connectHints } from '../connect';
import type { CliContext, Runner } from '../context';
import { EXIT, exitCodeForOutcome } from '../exitCodes';
import { formatDuration, parseDurationToSeconds } from '../../shared/domain/duration';
import { decisionLines, printRequest, relative, vmName } from '../render';
import type { AccessExplanation, RequestView } from '../types';
import { WaitInterrupted, waitForAccess } from '../wait';

interface RequestOptions {
  port: number[];
  for: string;
  from?: string;
  reason?: string;
  start?: string;
  protocol?: 'Tcp' | 'Udp';
  wait?: boolean;
  timeout: string;
  login?: string;
}

/** `jit request <vm>`: ask for access; with --wait, follow it until it is live and say how to connect. */
export function register(program: Command, run: Runner): void {
  program
    .command('request')
    .description('ask for access to ports of a VM for a while (optionally from a later start)')
    .argument('<vm>', 'the VM: its resource id, or <resource group>/<name> in the default subscription')
    .requiredOption('-p, --port <port>', 'a port to open (repeat for more)', collectPort)
    .requiredOption('--for <duration>', 'how long: 1h, 30m, 90s, 1h30m, 2d or ISO-8601 (PT1H30M)', parseFor)
    .option('--from <address>', 'source address or CIDR prefix (default: your address as the API sees it)')
    .option('--reason <text>', 'justification, recorded in the audit trail')
    .option(
      '--start <time>',
      'open at this time, not now (ISO-8601 with a zone: 2026-12-01T22:00Z)',
      parseStart,
    )
    .addOption(new Option('--protocol <protocol>', 'protocol (default Tcp)').choices(['Tcp', 'Udp']))
    .option('-w, --wait', 'wait until access is live (progress on stderr), then print how to connect')
    .option(
      '--timeout <duration>',
      'with --wait: how long to wait, from the start time if any',
      parseFor,
      // Commander does not run the parser over a default: give it parsed.
      'PT10M',
    )
    .option('--login <user>', 'with --wait: the user name in the ssh line (default: $USER)')
    .addHelpText(
      'after',
      `
Examples:
  jit request demo-rg/demo-vm --port 22 --for 1h --wait
  jit request /subscriptions/<sub>/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/demo-win \\
      --port 3389 --for 30m --from 203.0.113.7 --reason "CHG-1234"
  jit request demo-rg/demo-vm -p 22 --for 2h --start 2026-12-01T22:00Z      # a maintenance window
  id=$(jit request demo-rg/demo-vm -p 22 --for 15m --wait -o json | jq -r .id)

Exit codes with --wait: 0 live, 4 denied, 5 failed, 6 ended before it was live, 7 timed out.`,
    )
    .action(async (vm: string, opts: RequestOptions, cmd: Command) =>
      run(cmd, async (ctx) => {
        const body = {
          vm: resolveVm(vm, ctx.options.subscription),
          ports: opts.port,
          duration: opts.for,
          ...(opts.protocol ? { protocol: opts.protocol } : {}),
          ...(opts.from ? { sourcePrefix: opts.from } : {}),
          ...(opts.reason ? { justification: opts.reason } : {}),
          ...(opts.start ? { startAt: opts.start } : {}),
        };
        const { body: created } = await ctx.client.call<RequestView>('POST', 'requests', body);
        if (!opts.wait) {
          if (ctx.options.output === 'text') {
            ctx.out(
              `Request ${created.id} submitted${created.startAt ? `; access opens at ${created.startAt} (${relative(created.startAt)})` : ''}.`,
            );
            ctx.out(`Follow it with: jit status ${created.id}`);
          } else printRequest(ctx, created);
          return EXIT.ok;
        }

        let view: RequestView;
        try {
          view = await waitForAccess(ctx, created.id, {
            timeoutInMs: parseDurationToSeconds(opts.timeout) * 1000,
          });
        } catch (err) {
          if (!(err instanceof WaitInterrupted)) throw err;
          if (ctx.options.output === 'json') printRequest(ctx, err.view ?? created);
          return EXIT.interrupted;
        }
        const code = exitCodeForOutcome(view.status);
        const connect =
          view.status === 'active' ? connectHints(view, opts.login ?? ctx.env.USER ?? 'azureuser') : [];
        if (code === EXIT.timeout) {
          ctx.err(
            `jit: gave up waiting after ${formatDuration(parseDurationToSeconds(opts.timeout))}; the request is ${view.status}: jit status ${view.id}`,
          );
        }
        if (ctx.options.output !== 'text') {
          printRequest(ctx, view, ctx.options.output === 'json' ? { connect } : {});
          return code;
        }
        if (view.status !== 'active') {
          for (const l of [
            `Request ${view.id} is ${view.status}.`,
            ...(view.statusReason ? [view.statusReason] : []),
            ...decisionLines(view),
          ])
            ctx.out(l);
          if (code === EXIT.timeout)
            ctx.out(`Still waiting? jit status ${view.id}    Cancel it: jit revoke ${view.id}`);
          return code;
        }
        ctx.out(
          `Access to ${vmName(view.vmId)} is live: port ${view.ports.join(', ')} from ${view.sourcePrefix}.`,
        );
        for (const hint of connect) ctx.out(`  ${hint}`);
        if (view.expiresAt) ctx.out(`Access ends at ${view.expiresAt} (${relative(view.expiresAt)}).`);
        for (const l of decisionLines(view)) ctx.out(l);
        const more = await extensionRoom(ctx, view);
        ctx.out(
          `Done early? jit revoke ${view.id}${more ? `    More time? jit extend ${view.id} --for ${more}` : ''}`,
        );
        return code;
      }),
    );
}

/**
 * How much `jit extend` could add, as the short form to suggest (at most 30m), or undefined when the policy would
 * refuse: it needs approval (more time is a new request), or the grant already has the policy's maximum.
 */
async function extensionRoom(ctx: CliContext, view: RequestView): Promise<string | undefined> {
  if (view.approvalMode !== 'auto') return undefined;
  let limit = Number.POSITIVE_INFINITY;
  try {
    for (const port of view.ports) {
      const query = new URLSearchParams({ vm: view.vmId, port: String(port), protocol: view.protocol });
      const { body } = await ctx.client.call<AccessExplanation>(
        'GET',
        `policies/explain?${query.toString()}`,
      );
      if (body.policy?.approval.mode !== 'auto' || !body.port?.allowed || !body.port.maxDuration)
        return undefined;
      limit = Math.min(limit, parseDurationToSeconds(body.port.maxDuration));
    }
  } catch {
    return undefined; // no suggestion is better than a wrong one
  }
  const room = limit - view.durationInSeconds;
  return room > 0 ? formatDuration(Math.min(room, 1800)) : undefined;
}
