/**
 * The `jit` command, run in-process against the sandbox's API as a person or a script would use it: what it
 * prints, on which stream, and the exit code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { runCli } from '../../cli/jit';
import { EXIT } from '../../cli/exitCodes';
import { services } from '../../shared/composition';
import { startSandbox, waitFor } from '../support/sandbox';
import { demoGroupPolicy, rulesInAll, rulesInNone, view } from '../support/observe';

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('the jit command against the sandbox', () => {
  let sandbox: Sandbox;
  const jit = async (args: string[], user = 'alice@example.com', api?: string): Promise<Run> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['--api', api ?? `${sandbox.baseUrl}/api`, '--user', user, ...args], {
      out: (t) => out.push(t),
      err: (t) => err.push(t),
      env: { USER: 'azureuser' },
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const sub = ['--subscription', DEMO.subscriptionId];

  before(async () => {
    sandbox = await startSandbox();
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

    const latest = await jit(['status']);
    assert.equal(latest.code, EXIT.ok, latest.err);
    assert.match(latest.out, new RegExp(`^${id}  active`));
    assert.match(latest.out, /rule {5}jit-/);
    const asJson = await jit(['status', id, '-o', 'json']);
    assert.equal(JSON.parse(asJson.out).id, id);
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

  test('every error gives a message on stderr, nothing on stdout, and a meaningful exit code', async () => {
    const vm = DEMO.linuxVm.id;
    const cases: Array<[string, string[], number, RegExp, string?]> = [
      ['unknown command', ['frobnicate'], EXIT.usage, /unknown command 'frobnicate'/],
      ['bad duration', ['request', vm, '-p', '22', '--for', '1x'], EXIT.usage, /--for <duration>.*invalid/],
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
        '400 from the API',
        ['request', vm, '-p', '22', '--for', '1h', '--from', '10.0.0.1/24', '-o', 'json'],
        EXIT.usage,
        /400 The request is not valid[\s\S]*sourcePrefix: has host bits/,
      ],
      [
        '403 from the API',
        ['request', vm, '-p', '5432', '--for', '1h', '--from', '203.0.113.42', '-o', 'json'],
        EXIT.forbidden,
        /403 Access not allowed: port 5432\/Tcp is not allowed/,
      ],
      [
        '404 from the API',
        ['status', '01J0000000000000000000000A', '-o', 'json'],
        EXIT.forbidden,
        /404 Not found/,
      ],
      ['no requests yet', ['status'], EXIT.forbidden, /no requests yet/, 'nobody@example.com'],
      [
        'API unreachable',
        ['list', '--api', 'http://127.0.0.1:9/api'],
        EXIT.error,
        /could not reach http:\/\/127\.0\.0\.1:9\/api\/requests/,
      ],
    ];
    for (const [what, args, code, message, user] of cases) {
      const r = await jit(args, user);
      assert.equal(r.code, code, `${what}: exit ${r.code}, stderr: ${r.err}`);
      assert.match(r.err, message, what);
      assert.equal(r.out, '', `${what}: nothing on stdout`);
    }
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
    try {
      const pending = await jit([
        'request',
        DEMO.windowsVm.id,
        '-p',
        '3389',
        '--for',
        '10m',
        '--from',
        '198.51.100.45',
        '--wait',
        '--timeout',
        '2s',
      ]);
      assert.equal(pending.code, EXIT.timeout, pending.err);
      assert.match(pending.err, /Waiting for approval/);
      assert.match(pending.err, /gave up waiting after 2s; the request is pending-approval/);
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
