import type { Command } from 'commander';
import type { Runner } from '../context';
import { EXIT } from '../exitCodes';
import { printRequest } from '../render';
import type { RequestPage, RequestView } from '../types';

/** `jit status [id]`: one request (by default my latest), as the API shows it. */
export function register(program: Command, run: Runner): void {
  program
    .command('status')
    .description('show one request (default: your latest): its status, times and the NSG rules written')
    .argument('[id]', 'request id (default: your most recent request)')
    .addHelpText(
      'after',
      '\nExamples:\n  jit status\n  jit status 01JD3Z8N6T9V2X4Y6Z8A0B2C4D\n  jit status 01JD3Z8N6T9V2X4Y6Z8A0B2C4D --output json | jq .expiresAt',
    )
    .action(async (id: string | undefined, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        let target = id;
        if (!target) {
          const { body } = await ctx.client.call<RequestPage>('GET', 'requests?limit=1');
          target = body.items[0]?.id;
          if (!target) {
            ctx.err('jit: you have no requests yet (jit request --help)');
            return EXIT.forbidden;
          }
        }
        const { body } = await ctx.client.call<RequestView>('GET', `requests/${encodeURIComponent(target)}`);
        printRequest(ctx, body);
        return EXIT.ok;
      }),
    );
}
