/**
 * The `jit` command, run in-process against the sandbox's API as a person or a script would use it: what it
 * prints, on which stream, and the exit code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { runCli } from '../../cli/jit';
import { EXIT } from '../../cli/exitCodes';
import { services } from '../../shared/composition';
import { cliEnv, runJit } from '../support/cli';
import type { JitRun as Run } from '../support/cli';
import { startSandbox, waitFor } from '../support/sandbox';
import { demoGroupPolicy, rulesInAll, rulesInNone, view } from '../support/observe';

describe('the jit command against the sandbox', () => {
  let sandbox: Sandbox;
  const env = cliEnv();
  const jit = async (args: string[], user = 'alice@example.com', api?: string): Promise<Run> =>
    runJit(['--api', api ?? `${sandbox.baseUrl}/api`, '--user', user, ...args], env);
  const sub = ['--subscription', DEMO.subscriptionId];

  /** A port nothing listens on: the sandbox that is not running. */
  let closedPort = 0;

  before(async () => {
    sandbox = await startSandbox();
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('request --wait returns once the rule exists; its JSON output is one document', async () => {
    const r = await jit([
      ...sub,
      'request',
      `${DEMO.resourceGroup}/${DEMO.linuxVm.name}`,
      '--port',
      '22',
      '--for',
      '1h30m',
      '--from',
      '203.0.113.40',
      '--reason',
      'cli test',
      '--wait',
      '--output',
      'json',
    ]);
    assert.equal(r.code, EXIT.ok, r.err);
    const body = JSON.parse(r.out) as {
      id: string;
      status: string;
      durationInSeconds: number;
      connect: string[];
    };
    assert.equal(body.status, 'active');
    assert.equal(body.durationInSeconds, 5400);
    assert.ok(rulesInAll(sandbox, DEMO.linuxVm.nsgIds, body.id), 'the rule exists when --wait returns');
    assert.deepEqual(body.connect, [`ssh azureuser@${DEMO.linuxVm.privateIp}`]);
    assert.match(r.err, /Live\./, 'progress goes to stderr');

    const ext = await jit(['extend', body.id, '--for', '30m', '-o', 'json']);
    assert.equal(ext.code, EXIT.ok, ext.err);
    assert.equal(JSON.parse(ext.out).durationInSeconds, 7200);

    const rev = await jit(['revoke', body.id]);
    assert.equal(rev.code, EXIT.ok, rev.err);
    assert.match(rev.out, /is revoked; its rules are closed/);
    assert.ok(rulesInNone(sandbox, DEMO.linuxVm.nsgIds, body.id));
  });

  test('in text, --wait says how to connect and when access ends; status shows the latest', async () => {
    const r = await jit([
      'request',
      // demo-win asks an approver (docs/approvals.md); demo-rg's policy opens RDP on demo-vm at once.
      DEMO.linuxVm.id,
      '-p',
      '3389',
      '--for',
      'PT20M',
      '--from',
      '198.51.100.40',
      '--wait',
    ]);
    assert.equal(r.code, EXIT.ok, r.err);
    assert.match(r.out, /is live: port 3389 from 198\.51\.100\.40\/32/);
    assert.match(r.out, new RegExp(`mstsc /v:${DEMO.linuxVm.privateIp.replace(/\./g, '\\.')}`));
    assert.match(r.out, /Access ends at \S+ \(in (19m\d+s|20m)\)/);
    const id = /jit revoke (\w+)/.exec(r.out)?.[1];
    assert.ok(id);
    assert.match(r.out, new RegExp(`More time\\? jit extend ${id} --for 30m$`), 'RDP may last 1h: 40m more');

    const latest = await jit(['status']);
    assert.equal(latest.code, EXIT.ok, latest.err);
    assert.match(latest.out, new RegExp(`^${id}  active`));
    assert.match(latest.out, /rule {5}jit-/);
    const asJson = await jit(['status', id, '-o', 'json']);
    assert.equal(JSON.parse(asJson.out).id, id);
    await jit(['revoke', id]);
  });

  test('jit suggests extend only where the policy would allow it', async () => {
    const full = await jit([
      'request',
      DEMO.linuxVm.id,
      '-p',
      '3389',
      '--for',
      '1h',
      '--from',
      '198.51.100.47',
      '--wait',
    ]);
    assert.equal(full.code, EXIT.ok, full.err);
    const id = /jit revoke (\w+)/.exec(full.out)?.[1];
    assert.ok(id);
    assert.doesNotMatch(full.out, /jit extend/, "RDP already has the policy's whole hour");
    const refused = await jit(['extend', id, '--for', '1m']);
    assert.equal(refused.code, EXIT.forbidden, 'and extend would indeed be refused');
    await jit(['revoke', id]);
  });

  test('list pages with a continuation token, or follows them all', async () => {
    const user = 'lister@example.com';
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await jit(
        [
          ...sub,
          'request',
          'demo-rg/demo-vm',
          '-p',
          '22',
          '--for',
          '1m',
          '--from',
          '203.0.113.41',
          '-o',
          'json',
        ],
        user,
      );
      assert.equal(r.code, EXIT.ok, r.err);
      ids.unshift(JSON.parse(r.out).id);
    }
    const first = await jit(['list', '--limit', '2', '-o', 'json'], user);
    assert.equal(first.code, EXIT.ok, first.err);
    const page = JSON.parse(first.out) as { items: Array<{ id: string }>; continuationToken?: string };
    assert.deepEqual(
      page.items.map((i) => i.id),
      ids.slice(0, 2),
    );
    assert.ok(page.continuationToken);
    const rest = await jit(
      ['list', '--limit', '2', '--continuation-token', page.continuationToken, '-o', 'json'],
      user,
    );
    assert.deepEqual(
      JSON.parse(rest.out).items.map((i: { id: string }) => i.id),
      ids.slice(2),
    );
    const all = await jit(['list', '--limit', '1', '--all', '-o', 'json'], user);
    assert.deepEqual(
      JSON.parse(all.out).items.map((i: { id: string }) => i.id),
      ids,
    );
    const csv = await jit(['list', '--all', '-o', 'csv'], user);
    assert.equal(csv.out.split('\n')[0], 'id,status,vm,ports,from,when');
    assert.equal(csv.out.split('\n').length, 4);
    const table = await jit([...sub, 'list', '--vm', 'demo-rg/demo-vm', '--limit', '1'], user);
    assert.match(table.out, /^ID +STATUS +VM +PORTS +FROM +WHEN/);
    assert.match(table.err, /More: jit list --continuation-token \S+/);
    for (const id of ids) await jit(['revoke', id], user);
  });

  test('every error is one line and a hint on stderr, nothing on stdout, and the exit code docs/cli.md gives', async () => {
    const vm = DEMO.linuxVm.id;
    const cases: Array<[string, string[], number, RegExp, string?]> = [
      [
        'unknown command',
        ['frobnicate'],
        EXIT.usage,
        /^jit: unknown command 'frobnicate'\nhint: .*jit --help/,
      ],
      [
        'bad duration',
        ['request', vm, '-p', '22', '--for', '1x'],
        EXIT.usage,
        /^jit: --for: "1x" is not a duration: write e\.g\. 90s, 30m, 1h30m, 2d or ISO-8601 such as PT1H30M\nhint: usage: jit request /,
      ],
      // Once read as one minute, one hour and one hour: a duration someone typed must mean exactly that.
      ['1mo', ['request', vm, '-p', '22', '--for', '1mo'], EXIT.usage, /--for: "1mo" is not a duration/],
      [
        '1hour',
        ['request', vm, '-p', '22', '--for', '1hour'],
        EXIT.usage,
        /--for: "1hour" is not a duration/,
      ],
      ['1h0', ['request', vm, '-p', '22', '--for', '1h0'], EXIT.usage, /--for: "1h0" is not a duration/],
      [
        'months are not a duration',
        ['request', vm, '-p', '22', '--for', 'P1M'],
        EXIT.usage,
        /years or months/,
      ],
      ['missing --for', ['request', vm, '-p', '22'], EXIT.usage, /required option '--for/],
      ['bad port', ['request', vm, '-p', '70000', '--for', '1h'], EXIT.usage, /port number/],
      [
        'bad start',
        ['request', vm, '-p', '22', '--for', '1h', '--start', 'tomorrow'],
        EXIT.usage,
        /date-time with a zone/,
      ],
      [
        'no subscription',
        ['request', 'demo-rg/demo-vm', '-p', '22', '--for', '1h'],
        EXIT.usage,
        /JIT_SUBSCRIPTION_ID/,
      ],
      [
        '400 from the API: the reason once, against the option typed',
        ['request', vm, '-p', '22', '--for', '1h', '--from', '10.0.0.1/24'],
        EXIT.usage,
        /^jit: --from: .*host bits[^\n]*$/,
      ],
      [
        'a justification the policy requires is asked for as --reason',
        ['request', DEMO.windowsVm.id, '-p', '3389', '--for', '30m', '--from', '203.0.113.42'],
        EXIT.usage,
        /^jit: --reason: is required by the policy for this VM$/,
      ],
      [
        '403 names what the policy allows',
        ['request', vm, '-p', '5432', '--for', '1h', '--from', '203.0.113.42'],
        EXIT.forbidden,
        /^jit: 403 Access not allowed: port 5432\/Tcp is not allowed by the policy; it allows 22\/Tcp up to 3h, 3389\/Tcp up to 1h$/,
      ],
      [
        'a duration over the policy says its maximum',
        ['request', vm, '-p', '3389', '--for', '2h', '--from', '203.0.113.42'],
        EXIT.forbidden,
        /2h is longer than the policy allows for port 3389: at most 1h/,
      ],
      [
        'a VM that does not exist is not found (3), not a usage error',
        [
          ...['--subscription', DEMO.subscriptionId],
          'request',
          'demo-rg/demo-vmm',
          '-p',
          '22',
          '--for',
          '1h',
          '--from',
          '203.0.113.42',
        ],
        EXIT.forbidden,
        /the VM was not found/,
      ],
      ['404 from the API', ['status', '01J0000000000000000000000A'], EXIT.forbidden, /404 Not found/],
      ['no requests yet', ['status'], EXIT.forbidden, /no requests yet/, 'nobody@example.com'],
      [
        'no server',
        ['list', '--api', `http://127.0.0.1:${closedPort}/api`],
        EXIT.error,
        /^jit: could not reach http:\/\/127\.0\.0\.1:\d+\/api \(ECONNREFUSED\)\nhint: is the sandbox running\? Start it with npm start/,
      ],
    ];
    for (const [what, args, code, message, user] of cases) {
      const r = await jit(args, user);
      assert.equal(r.code, code, `${what}: exit ${r.code}, stderr: ${r.err}`);
      assert.match(r.err, message, what);
      assert.ok(r.err.split('\n').length <= 2, `${what}: at most a line and a hint, not:\n${r.err}`);
      assert.equal(r.out, '', `${what}: nothing on stdout`);
    }

    const noApi = await jit(['list'], 'alice@example.com', sandbox.baseUrl);
    assert.equal(noApi.code, EXIT.error, 'a URL that is not the API is not "not allowed"');
    assert.match(
      noApi.err,
      /answered 404 .*not the jit API\nhint: the API's URL ends in \/api: try --api http:\/\/\S+\/api$/,
    );

    const nobody = await runJit(['--api', `${sandbox.baseUrl}/api`, 'list'], cliEnv());
    assert.equal(nobody.code, EXIT.usage);
    assert.match(nobody.err, /^jit: no user to act as in the sandbox\nhint: name one: --user /);
  });

  test('with -o json a failure is the problem document on stderr', async () => {
    const refused = await jit([
      '-o',
      'json',
      'request',
      DEMO.linuxVm.id,
      '-p',
      '5432',
      '--for',
      '1h',
      '--from',
      '203.0.113.42',
    ]);
    assert.equal(refused.code, EXIT.forbidden);
    assert.equal(refused.out, '');
    const problem = JSON.parse(refused.err);
    assert.equal(problem.status, 403);
    assert.match(problem.type, /docs\/api\.md#accessnotallowed$/);
    assert.match(problem.detail, /it allows 22\/Tcp up to 3h/);

    const usage = await jit(['request', DEMO.linuxVm.id, '-p', '22', '--for', '1mo', '-o', 'json']);
    assert.equal(usage.code, EXIT.usage);
    const doc = JSON.parse(usage.err);
    assert.match(doc.type, /docs\/cli\.md#usage-errors$/);
    assert.match(doc.detail, /"1mo" is not a duration/);
    assert.match(doc.hint, /jit request --help/);

    const down = await jit(['list', '-o', 'json'], 'alice@example.com', `http://127.0.0.1:${closedPort}/api`);
    assert.equal(down.code, EXIT.error);
    assert.match(JSON.parse(down.err).hint, /npm start/);
  });

  test('waiting ends with the exit code of the outcome: ended, failed, timed out', async () => {
    const created = await jit([
      'request',
      DEMO.linuxVm.id,
      '-p',
      '22',
      '--for',
      '2s',
      '--from',
      '203.0.113.43',
      '-o',
      'json',
    ]);
    const id = JSON.parse(created.out).id as string;
    await waitFor('expired', async () => (await view(sandbox, id)).status === 'expired', 20_000);
    const again = await jit(['revoke', id]);
    assert.equal(again.code, EXIT.ended);
    assert.match(again.err, /409 Access already ended: request \w+ is expired/);

    // ARM refusing the rule for good fails the grant.
    sandbox.arm.faults.inject({
      method: 'PUT',
      pathIncludes: '/securityRules/jit-',
      status: 400,
      code: 'InvalidRequestFormat',
      times: 1,
    });
    const failed = await jit([
      'request',
      DEMO.linuxVm.id,
      '-p',
      '22',
      '--for',
      '5m',
      '--from',
      '203.0.113.44',
      '--wait',
    ]);
    assert.equal(failed.code, EXIT.failed, failed.err);
    assert.match(failed.out, /is failed/);

    // A policy that waits for approvers keeps it pending: --wait gives up after --timeout.
    const policies = services().deps.policies;
    const base = await demoGroupPolicy();
    const scope = DEMO.windowsVm.id.toLowerCase();
    await policies.upsert({
      ...base,
      scope,
      approval: { mode: 'manual', approvers: ['user:bob@example.com'], required: 1, timeoutInSeconds: 3600 },
    });
    const waitForRdp = (from: string) => [
      'request',
      DEMO.windowsVm.id,
      '-p',
      '3389',
      '--for',
      '10m',
      '--from',
      from,
      '--wait',
    ];
    try {
      const pending = await jit([...waitForRdp('198.51.100.45'), '--timeout', '2s']);
      assert.equal(pending.code, EXIT.timeout, pending.err);
      assert.match(
        pending.err,
        /Waiting for approval: 0 of 1 from bob@example\.com, by \S+Z \(in (1h|59m\d+s)\)/,
        'who must approve, how many and by when',
      );
      assert.match(pending.err, /gave up waiting after 2s; the request is pending-approval/);
      const pendingId = /Request (\w+) is pending-approval/.exec(pending.out)?.[1];
      assert.ok(pendingId, pending.out);
      assert.match(pending.out, new RegExp(`Cancel it: jit revoke ${pendingId}`));

      // Ctrl-C while waiting: jit says at once that the request goes on, and how to cancel it.
      const interrupt = new AbortController();
      const err: string[] = [];
      const code = await runCli(
        ['--api', `${sandbox.baseUrl}/api`, '--user', 'alice@example.com', ...waitForRdp('198.51.100.46')],
        {
          out: () => undefined,
          err: (t) => {
            err.push(t);
            if (t.startsWith('Waiting for approval')) interrupt.abort();
          },
          env,
          signal: interrupt.signal,
        },
      );
      assert.equal(code, EXIT.interrupted);
      const stopped =
        /Stopped waiting; request (\w+) is still pending-approval and goes on without you\. Cancel it with: jit revoke \1$/.exec(
          err.at(-1) ?? '',
        );
      assert.ok(stopped, err.join('\n'));
      assert.equal((await view(sandbox, stopped[1]!)).status, 'pending-approval');
      for (const id of [pendingId, stopped[1]!]) assert.equal((await jit(['revoke', id])).code, EXIT.ok);
    } finally {
      await policies.upsert({ ...base, scope });
    }
  });

  test('help lists every command, with examples', async () => {
    const top = await jit(['--help']);
    assert.equal(top.code, EXIT.ok);
    for (const c of ['request', 'status', 'list', 'extend', 'revoke'])
      assert.match(top.out, new RegExp(`\\n  ${c} `));
    assert.match(top.out, /Examples:/);
    for (const c of ['request', 'status', 'list', 'extend', 'revoke']) {
      const h = await jit([c, '--help']);
      assert.equal(h.code, EXIT.ok);
      assert.match(h.out, /Examples:\n {2}jit /, `${c} --help has examples`);
    }
  });
});
