import type { Command } from 'commander';
import type { CliContext } from '../context';

interface RequestView {
  id: string;
  status: string;
  vmId: string;
  ports: number[];
  sourcePrefix: string;
  expiresAt?: string;
  statusReason?: string;
  rules: Array<{ nsgId: string; ruleName: string; priority: number; state: string }>;
}

/** `jit status <id>`: one request, as the API shows it. */
export function register(
  program: Command,
  run: (cmd: Command, action: (ctx: CliContext) => Promise<number>) => Promise<void>,
): void {
  program
    .command('status')
    .description('show one request: its status, expiry and the NSG rules written')
    .argument('<id>', 'request id')
    .addHelpText(
      'after',
      '\nExamples:\n  jit status 01JD3Z8N6T9V2X4Y6Z8A0B2C4D\n  jit status 01JD3Z8N6T9V2X4Y6Z8A0B2C4D --output json | jq .expiresAt',
    )
    .action(async (id: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { body } = await ctx.client.call<RequestView>('GET', `requests/${encodeURIComponent(id)}`);
        if (ctx.options.output === 'json') {
          ctx.out(JSON.stringify(body, null, 2));
        } else {
          ctx.out(`${body.id}  ${body.status}`);
          ctx.out(`  vm       ${body.vmId}`);
          ctx.out(`  ports    ${body.ports.join(', ')} from ${body.sourcePrefix}`);
          if (body.expiresAt) ctx.out(`  expires  ${body.expiresAt}`);
          if (body.statusReason) ctx.out(`  reason   ${body.statusReason}`);
          for (const r of body.rules)
            ctx.out(`  rule     ${r.ruleName} priority ${r.priority} (${r.state}) in ${r.nsgId}`);
        }
        return 0;
      }),
    );
}
