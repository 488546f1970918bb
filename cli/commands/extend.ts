import type { Command } from 'commander';
import { parseFor } from '../args';
import type { Runner } from '../context';
import { EXIT } from '../exitCodes';
import { printRequest, relative } from '../render';
import type { RequestView } from '../types';

/** `jit extend <id> --for 30m`: more time on live access, within the policy's maximum. */
export function register(program: Command, run: Runner): void {
  program
    .command('extend')
    .description("add time to live access (the whole must fit the policy's maximum)")
    .argument('<id>', 'request id')
    .requiredOption('--for <duration>', 'how much longer: 30m, 1h, 1h30m or ISO-8601', parseFor)
    .addHelpText(
      'after',
      `
Examples:
  jit extend 01JD3Z8N6T9V2X4Y6Z8A0B2C4D --for 30m
  jit extend "$id" --for PT1H -o json | jq -r .expiresAt

A policy that needs approval does not extend in place: ask anew with jit request.`,
    )
    .action(async (id: string, opts: { for: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { body } = await ctx.client.call<RequestView>(
          'POST',
          `requests/${encodeURIComponent(id)}/extend`,
          {
            duration: opts.for,
          },
        );
        if (ctx.options.output === 'text' && body.expiresAt) {
          ctx.out(`Access ${body.id} now ends at ${body.expiresAt} (${relative(body.expiresAt)}).`);
        } else printRequest(ctx, body);
        return EXIT.ok;
      }),
    );
}
