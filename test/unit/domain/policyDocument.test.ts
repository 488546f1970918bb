import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyDocumentInvalid, formatPolicyProblem } from '../../../shared/domain/errors';
import type { PolicyProblem } from '../../../shared/domain/errors';
import {
  parsePolicyDocument,
  policyDocumentToYaml,
  toPolicyDocument,
} from '../../../shared/domain/policyDocument';

const SUB = '/subscriptions/00000000-0000-0000-0000-000000000001';
const RG = `${SUB}/resourceGroups/Prod-RG`;
const DAY = 86400;

const parse = (text: string, maxDurationInSeconds = DAY) =>
  parsePolicyDocument(text, { source: 'policies.yaml', maxDurationInSeconds });

function problems(text: string, maxDurationInSeconds = DAY): PolicyProblem[] {
  try {
    parse(text, maxDurationInSeconds);
  } catch (e) {
    assert.ok(e instanceof PolicyDocumentInvalid, String(e));
    return e.problems;
  }
  assert.fail('expected the document to be refused');
}

/** The one problem a document has, as `file:line:column: field: reason [rule]`. */
function only(text: string, maxDurationInSeconds = DAY): string {
  const found = problems(text, maxDurationInSeconds);
  assert.equal(found.length, 1, found.map(formatPolicyProblem).join('\n'));
  return formatPolicyProblem(found[0]!);
}

/** A valid policy in YAML; `lines` replace or add keys (two-space indented under the list item). */
function doc(...extra: string[]): string {
  return [
    'policies:',
    `  - scope: ${RG}`,
    '    ports:',
    '      - { port: 22, maxDuration: PT3H }',
    '    allowedSourcePrefixes: [my-ip]',
    "    requesters: ['*']",
    ...extra,
  ].join('\n');
}

test('a document converts to policies with every default filled', () => {
  const [p] = parse(doc());
  assert.deepEqual(p, {
    scope: `${SUB}/resourcegroups/prod-rg`,
    ports: [{ port: 22, protocol: 'Tcp', maxDurationInSeconds: 3 * 3600 }],
    allowedSourcePrefixes: ['my-ip'],
    requesters: ['*'],
    approval: { mode: 'auto', approvers: [], required: 0, timeoutInSeconds: 1800 },
    justification: { required: false },
    enforce: false,
  });
});

test('the example of the issue converts: manual approval, a ticket pattern, enforcement', () => {
  const [p] = parse(
    [
      'policies:',
      `  - scope: ${SUB}/resourceGroups/prod-rg/providers/Microsoft.Compute/virtualMachines/DB1`,
      '    ports:',
      '      - { port: 22, protocol: Tcp, maxDuration: PT3H }',
      '      - { port: 3389, protocol: Udp, maxDuration: PT1H }',
      '    allowedSourcePrefixes: ["203.0.113.7", "2001:DB8::/32", "my-ip"]',
      '    requesters: ["group:11111111-2222-3333-4444-555555555555", "user:alice@contoso.com"]',
      '    approval: { mode: manual, approvers: ["group:66666666-7777-8888-9999-000000000000"], required: 2 }',
      '    justification: { pattern: "^(INC|CHG)[0-9]{6}" }',
      '    enforce: true',
    ].join('\n'),
  );
  assert.equal(p?.scope, `${SUB}/resourcegroups/prod-rg/providers/microsoft.compute/virtualmachines/db1`);
  assert.deepEqual(p?.allowedSourcePrefixes, ['203.0.113.7/32', '2001:db8::/32', 'my-ip']);
  // A group may hold many people: two approvals from one group entry is fine.
  assert.deepEqual(p?.approval, {
    mode: 'manual',
    approvers: ['group:66666666-7777-8888-9999-000000000000'],
    required: 2,
    timeoutInSeconds: 1800,
  });
  // A pattern nobody must meet would be a trap: it makes a justification required unless said otherwise.
  assert.deepEqual(p?.justification, { required: true, pattern: '^(INC|CHG)[0-9]{6}' });
  assert.equal(p?.enforce, true);
  assert.deepEqual(parse(doc('    justification: { required: false, pattern: "^INC" }'))[0]?.justification, {
    required: false,
    pattern: '^INC',
  });
  assert.equal(parse(doc('    approval: { mode: manual, approvers: [user:a@x] }'))[0]?.approval.required, 1);
});

test('JSON documents are read the same way, with positions', () => {
  const json = JSON.stringify(
    {
      policies: [
        {
          scope: RG,
          ports: [{ port: 22, maxDuration: 'PT3H' }],
          allowedSourcePrefixes: ['my-ip'],
          requesters: ['*'],
        },
      ],
    },
    null,
    2,
  );
  assert.deepEqual(parsePolicyDocument(json, { source: 'p.json', maxDurationInSeconds: DAY }), parse(doc()));
  const bad = json.replace('"maxDuration"', '"maxDurations"');
  assert.deepEqual(problems(bad).map(formatPolicyProblem), [
    'policies.yaml:6:9: policies[0].ports[0].maxDuration: is required [missing-field]',
    'policies.yaml:8:11: policies[0].ports[0].maxDurations: is not a known field (known: port, protocol, maxDuration) [unknown-field]',
  ]);
});

test('an unknown port field is named with its line and column', () => {
  assert.equal(
    only(doc().replace('{ port: 22, maxDuration: PT3H }', '{ port: 22, protcol: Udp, maxDuration: PT3H }')),
    'policies.yaml:4:21: policies[0].ports[0].protcol: is not a known field (known: port, protocol, maxDuration) [unknown-field]',
  );
  assert.equal(
    only(doc('    enforced: true')),
    'policies.yaml:7:5: policies[0].enforced: is not a known field (known: scope, description, ports, allowedSourcePrefixes, requesters, approval, justification, enforce, cutSessions) [unknown-field]',
  );
});

test("a port's maximum over the system's cap names JIT_MAX_DURATION", () => {
  assert.equal(
    only(doc().replace('PT3H', 'PT2H'), 3600),
    "policies.yaml:4:34: policies[0].ports[0].maxDuration: PT2H is longer than the system's maximum, 1h (the JIT_MAX_DURATION setting) [max-duration-over-cap]",
  );
  assert.equal(
    only(doc().replace('PT3H', 'P1M')),
    'policies.yaml:4:34: policies[0].ports[0].maxDuration: P1M must not use years or months (use days, hours or minutes) [bad-duration]',
  );
  assert.equal(
    only(doc().replace('PT3H', '3h')),
    'policies.yaml:4:34: policies[0].ports[0].maxDuration: "3h" must be an ISO-8601 duration such as PT30M, PT3H or P1D [bad-duration]',
  );
});

test('manual approval needs approvers, and no more approvals than named users', () => {
  assert.equal(
    only(doc('    approval: { mode: manual, approvers: [] }')),
    'policies.yaml:7:42: policies[0].approval.approvers: manual approval needs at least one approver (user:<UPN or object id> or group:<group object id>) [approvers-empty]',
  );
  assert.equal(
    only(doc('    approval: { mode: manual }')),
    'policies.yaml:7:15: policies[0].approval: manual approval needs at least one approver (user:<UPN or object id> or group:<group object id>) [approvers-empty]',
  );
  assert.equal(
    only(doc('    approval: { mode: manual, approvers: [user:a@x, user:b@x], required: 3 }')),
    'policies.yaml:7:74: policies[0].approval.required: asks for 3 approvals but names only 2 approvers [required-exceeds-approvers]',
  );
  assert.equal(
    only(doc('    approval: { mode: auto, required: 1 }')),
    'policies.yaml:7:39: policies[0].approval.required: applies only when mode is manual [approval-field-for-auto]',
  );
  assert.equal(
    only(doc('    approval: { mode: manual, approvers: [bob] }')),
    'policies.yaml:7:43: policies[0].approval.approvers[0]: "bob" must be user:<UPN or object id> or group:<group object id> [bad-principal]',
  );
});

test('malformed source prefixes are refused, with what ipaddr.js made of them', () => {
  const prefix = (p: string) => only(doc().replace('[my-ip]', `[my-ip, '${p}']`));
  assert.equal(
    prefix('10.0.0.1/24'),
    'policies.yaml:5:36: policies[0].allowedSourcePrefixes[1]: "10.0.0.1/24" has host bits set; did you mean 10.0.0.0/24? [malformed-prefix]',
  );
  assert.match(
    prefix('10.0.0.300'),
    /:5:36: .*"10\.0\.0\.300" must be an IPv4 or IPv6 address or CIDR prefix \[malformed-prefix\]$/,
  );
  // ipaddr.js reads 010.0.0.0 as octal (8.0.0.0): a reviewer would not.
  assert.match(prefix('010.0.0.0/8'), /four decimal numbers .*\[malformed-prefix\]$/);
});

test('a broad source is accepted only when written explicitly', () => {
  for (const broad of ['*', '0.0.0.0/0', '::/0']) {
    assert.deepEqual(parse(doc().replace('[my-ip]', `['${broad}']`))[0]?.allowedSourcePrefixes, [broad]);
  }
  // The Internet service tag by its name is explicit too (and narrower than `*`): stored as Azure spells it.
  assert.deepEqual(parse(doc().replace('[my-ip]', `['internet']`))[0]?.allowedSourcePrefixes, ['Internet']);
  for (const implicit of ['any', '0/0']) {
    assert.equal(
      only(doc().replace('[my-ip]', `['${implicit}']`)),
      `policies.yaml:5:29: policies[0].allowedSourcePrefixes[0]: "${implicit}" allows any source; write *, 0.0.0.0/0 or ::/0 if that is really meant [implicit-broad-source]`,
    );
  }
});

test('a justification pattern must be a valid regular expression', () => {
  assert.equal(
    only(doc('    justification: { required: true, pattern: "^(INC|CHG" }')),
    'policies.yaml:7:47: policies[0].justification.pattern: is not a valid regular expression: /^(INC|CHG/: Unterminated group [bad-pattern]',
  );
});

test('each scope has one policy, and a scope is a subscription, resource group or VM', () => {
  const twice = [doc(), doc().split('\n').slice(1).join('\n').replace('Prod-RG', 'prod-rg')].join('\n');
  assert.equal(
    only(twice),
    `policies.yaml:7:12: policies[1].scope: ${SUB}/resourcegroups/prod-rg is already the scope of policies[0] (line 2): one policy per scope [duplicate-scope]`,
  );
  for (const scope of [
    '/subscriptions/not-a-guid',
    `${SUB}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg`,
    `${SUB}/resourceGroups/rg/`,
    'prod-rg',
  ]) {
    assert.match(
      only(doc().replace(RG, scope)),
      /^policies\.yaml:2:12: policies\[0\]\.scope: must be the id of a subscription .*\[bad-scope\]$/,
    );
  }
  assert.equal(parse(doc().replace(RG, SUB))[0]?.scope, SUB);
});

test('ports must be in range and listed once per protocol', () => {
  assert.equal(
    only(doc().replace('port: 22', 'port: 65536')),
    'policies.yaml:4:17: policies[0].ports[0].port: must be a port number from 1 to 65535, not 65536 [port-out-of-range]',
  );
  assert.match(only(doc().replace('port: 22', 'port: 0')), /:4:17: .*not 0 \[port-out-of-range\]$/);
  assert.equal(
    only(doc().replace('port: 22', "port: '22'")),
    'policies.yaml:4:17: policies[0].ports[0].port: must be an integer [wrong-type]',
  );
  const twice = doc().replace(
    '      - { port: 22, maxDuration: PT3H }',
    "      - { port: 22, maxDuration: PT3H }\n      - { port: 22, protocol: '*', maxDuration: PT1H }",
  );
  assert.equal(
    only(twice),
    'policies.yaml:5:9: policies[0].ports[1]: 22/* overlaps ports[0] (line 4): list each port and protocol once [duplicate-port]',
  );
});

test('missing fields, wrong types and bad values are named', () => {
  assert.equal(
    only(doc().replace("    requesters: ['*']", '')),
    'policies.yaml:2:5: policies[0].requesters: is required [missing-field]',
  );
  assert.equal(
    only(doc().replace('{ port: 22, maxDuration: PT3H }', '{ port: 22, protocol: TCP, maxDuration: PT3H }')),
    'policies.yaml:4:31: policies[0].ports[0].protocol: must be one of Tcp, Udp, *, not "TCP" [not-allowed-value]',
  );
  assert.deepEqual(problems('policy: []').map(formatPolicyProblem), [
    'policies.yaml:1:1: policies: is required [missing-field]',
    'policies.yaml:1:1: policy: is not a known field (known: $schema, policies) [unknown-field]',
  ]);
  assert.equal(only(''), 'policies.yaml:1:1: must be a mapping (object) [wrong-type]');
});

test('YAML syntax errors and duplicate keys are reported where they are', () => {
  assert.equal(
    only(doc().replace("requesters: ['*']", "requesters: ['*'\n    enforce: true")),
    'policies.yaml:7:5: Flow sequence in block collection must be sufficiently indented and end with a ] [syntax]',
  );
  assert.equal(
    only(doc('    enforce: true', '    enforce: false')),
    'policies.yaml:8:5: Map keys must be unique [syntax]',
  );
});

test('every problem of a document is reported at once, in line order', () => {
  const found = problems(
    doc('    approval: { mode: manual, approvers: [] }')
      .replace('PT3H', 'P2D')
      .replace('[my-ip]', '[my-ip, any]')
      .replace('port: 22', 'port: 22, colour: red'),
  ).map((p) => `${p.line}:${p.rule}`);
  assert.deepEqual(found, ['4:unknown-field', '5:implicit-broad-source', '7:approvers-empty']);
});

test('the document round-trips through GET: YAML and JSON parse back to the same policies', () => {
  const text = readFileSync(join(__dirname, '..', '..', '..', '..', 'dev', 'policies.yaml'), 'utf8');
  const policies = parse(text);
  const yaml = policyDocumentToYaml(toPolicyDocument(policies));
  assert.match(yaml, /^# yaml-language-server: \$schema=https:\/\/\S+\/schemas\/policies\.schema\.json\n/);
  const sorted = [...policies].sort((a, b) => a.scope.localeCompare(b.scope));
  assert.deepEqual(parse(yaml), sorted);
  assert.deepEqual(parse(JSON.stringify(toPolicyDocument(policies))), sorted);
});

test('requesters may name an app by client id; an app never approves; manual approval is refused where nobody can sign in', () => {
  const withRequesters = (requesters: string) =>
    [
      'policies:',
      `  - scope: ${RG}`,
      '    ports:',
      '      - { port: 22, maxDuration: PT3H }',
      '    allowedSourcePrefixes: [my-ip]',
      `    requesters: ${requesters}`,
    ].join('\n');
  const app = 'app:C1D2E3F4-A5B6-4C7D-8E9F-0A1B2C3D4E5F';
  assert.deepEqual(parse(withRequesters(`['${app}', 'group:ops']`))[0]?.requesters, [app, 'group:ops']);
  assert.match(
    only(withRequesters("['app:pipeline']")),
    /requesters\[0\]: "app:pipeline" must be .*app:<client id \(a GUID\)> \[bad-principal\]/,
  );
  assert.match(
    only(doc(`    approval: { mode: manual, approvers: ['${app}'] }`)),
    /approvers\[0\]: .* must be user:<UPN or object id> or group:<group object id> \[bad-principal\]/,
  );
  const jwtMode = parsePolicyDocument.bind(
    undefined,
    doc("    approval: { mode: manual, approvers: ['user:bob@example.com'] }"),
    {
      source: 'policies.yaml',
      maxDurationInSeconds: DAY,
      manualApprovalUnavailable: 'jwt mode has no browser sign-in',
    },
  );
  assert.throws(jwtMode, (e: unknown) => {
    assert.ok(e instanceof PolicyDocumentInvalid);
    assert.equal(e.problems[0]?.rule, 'manual-approval-unavailable');
    assert.equal(e.problems[0]?.field, 'policies[0].approval.mode');
    return true;
  });
});

test('a description with Unicode bidirectional controls is refused', () => {
  assert.match(
    only(doc('    description: "fine \u202Eenil\u202C"')),
    /description: must not contain Unicode bidirectional control characters \(U\+202E at position 6\).* \[bidi-control\]/,
  );
});
