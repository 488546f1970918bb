import type { Command } from 'commander';
import type { Runner } from '../context';
import { EXIT } from '../exitCodes';
import { printRequest } from '../render';
import type { RequestView } from '../types';

/** `jit revoke <id>`: end access now ("I'm done"), or cancel a request before it is live. */
export function register(program: Command, run: Runner): void {
  program
    .command('revoke')
    .description('end access now, or cancel a request that is not live yet')
    .argument('<id>', 'request id')
    .addHelpText(
      'after',
      `
Examples:
  jit revoke 01JD3Z8N6T9V2X4Y6Z8A0B2C4D
  jit list --status active -o json | jq -r '.items[].id' | xargs -n1 jit revoke

The rules are closed when the command returns. Sessions already open are not cut: NSGs are stateful.
Revoking a revoked request is fine; one that expired exits with code 6.`,
    )
    .action(async (id: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { body } = await ctx.client.call<RequestView>(
          'POST',
          `requests/${encodeURIComponent(id)}/revoke`,
        );
        if (ctx.options.output === 'text') {
          const closed = (body.rules ?? []).length > 0 ? '; its rules are closed' : '';
          ctx.out(`Request ${body.id} is ${body.status}${closed}.`);
        } else printRequest(ctx, body);
        return EXIT.ok;
      }),
    );
}
