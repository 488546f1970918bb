import { Option } from 'commander';
import type { Command } from 'commander';
import { REQUEST_STATUSES } from '../types';
import type { RequestPage, RequestView } from '../types';
import { resolveVm } from '../args';
import type { Runner } from '../context';
import { EXIT } from '../exitCodes';
import { printRows } from '../render';

interface ListOptions {
  status?: string;
  vm?: string;
  requester?: string;
  limit: string;
  continuationToken?: string;
  all?: boolean;
}

/** `jit list`: my requests, newest first, a page at a time (or all of them). */
export function register(program: Command, run: Runner): void {
  program
    .command('list')
    .description('list your requests, newest first')
    .addOption(new Option('--status <status>', 'only requests in this status').choices(REQUEST_STATUSES))
    .option('--vm <vm>', 'only requests for this VM (resource id, or <resource group>/<name>)')
    .option('--requester <id>', 'admins and auditors: the requests of someone else')
    .option('--limit <n>', 'requests per page, 1-100', '25')
    .option('--continuation-token <token>', 'continue after the page that returned this token')
    .option('--all', 'follow continuation tokens to the end')
    .addHelpText(
      'after',
      `
Examples:
  jit list --status active
  jit list --vm demo-rg/demo-vm --all -o csv > my-requests.csv
  jit list -o json | jq -r '.items[].id'

A page may hold fewer requests than --limit; more follow while a continuation token is printed.`,
    )
    .action(async (opts: ListOptions, cmd: Command) =>
      run(cmd, async (ctx) => {
        const query = new URLSearchParams({ limit: opts.limit });
        if (opts.status) query.set('status', opts.status);
        if (opts.vm) query.set('vm', resolveVm(opts.vm, ctx.options.subscription));
        if (opts.requester) query.set('requester', opts.requester);
        let token = opts.continuationToken;
        const items: RequestView[] = [];
        do {
          if (token) query.set('continuationToken', token);
          const { body } = await ctx.client.call<RequestPage>('GET', `requests?${query.toString()}`);
          items.push(...body.items);
          token = body.continuationToken;
        } while (opts.all && token);

        if (ctx.options.output === 'json') {
          ctx.out(JSON.stringify(token ? { items, continuationToken: token } : { items }, null, 2));
        } else if (items.length === 0 && ctx.options.output === 'text') {
          ctx.out('No requests.');
        } else {
          printRows(ctx, items);
        }
        if (token && ctx.options.output !== 'json') {
          ctx.err(`More: jit list --continuation-token ${token}  (or --all)`);
        }
        return EXIT.ok;
      }),
    );
}
