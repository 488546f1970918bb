/**
 * The adversarial suite: what an attacker inside or outside the tenant can send to the API, and what must
 * come back — a refusal, and nothing written. Runs the sandbox in `jwt` mode against a local JWKS endpoint.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { TABLES } from '../../shared/names';
import { approvalMail, formTokenIn, getPage, linkIn, postDecision, vmWithPolicy } from '../support/approvals';
import { api, startSandbox, waitFor } from '../support/sandbox';

const VM = DEMO.linuxVm.id;
const AUDIENCE = 'api://jit-test';

async function countRequests(sandbox: Sandbox): Promise<number> {
  let n = 0;
  for await (const row of sandbox
    .table(TABLES.requests)
    .listEntities({ queryOptions: { filter: "RowKey eq 'request'" } }))
    if (row) n++;
  return n;
}

describe('adversarial: bearer tokens, headers and bodies', () => {
  let sandbox: Sandbox;
  let jwks: Server;
  let issuer: string;
  let key: CryptoKey;
  let otherKey: CryptoKey;
  let publicJwk: JWK;

  const token = (
    claims: Record<string, unknown> = {},
    opts: { key?: CryptoKey; kid?: string; exp?: string | number; iss?: string; aud?: string } = {},
  ) =>
    new SignJWT({ preferred_username: 'alice@example.com', oid: '0000-alice', roles: [], ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'k1' })
      .setIssuer(opts.iss ?? issuer)
      .setAudience(opts.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '10m')
      .sign(opts.key ?? key);

  const call = (
    method: string,
    path: string,
    body: unknown,
    bearer: string | undefined,
    headers: Record<string, string> = {},
  ) =>
    api(
      sandbox,
      method,
      path,
      body,
      null,
      bearer ? { authorization: `Bearer ${bearer}`, ...headers } : headers,
    );

  before(async () => {
    // The tenant's signing key (published below as the JWKS) and an attacker's key.
    const tenant = await generateKeyPair('RS256', { extractable: true });
    key = tenant.privateKey;
    otherKey = (await generateKeyPair('RS256')).privateKey;
    publicJwk = { ...(await exportJWK(tenant.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((req, res) => {
      if (req.url === '/keys')
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const port = (jwks.address() as AddressInfo).port;
    issuer = `http://127.0.0.1:${port}/tenant/v2.0`;
    sandbox = await startSandbox({
      settings: {
        JIT_AUTH_MODE: 'jwt',
        JIT_JWT_ISSUER: issuer,
        JIT_JWT_AUDIENCE: AUDIENCE,
        JIT_JWT_JWKS_URI: `http://127.0.0.1:${port}/keys`,
        JIT_RATE_LIMIT_PER_MINUTE: '1000',
      },
    });
  });
  after(async () => {
    await sandbox?.stop();
    jwks?.close();
  });

  const body = { vm: VM, ports: [22], duration: 'PT1M', sourcePrefix: '203.0.113.7' };

  test('a valid token from the tenant is accepted', async () => {
    const res = await call('POST', 'requests', body, await token());
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.requester, 'alice@example.com');
  });

  test('forged, expired, wrong-audience, wrong-issuer and alg:none tokens are refused and write nothing', async () => {
    const before = await countRequests(sandbox);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      preferred_username: 'alice@example.com',
      iss: issuer,
      aud: AUDIENCE,
      iat: now,
      exp: now + 600,
    };
    const valid = await token();
    const [h, , signature] = valid.split('.');
    const cases: Array<[string, string | undefined]> = [
      ['no token', undefined],
      ['expired', await token({}, { exp: now - 3600 })],
      ['wrong audience', await token({}, { aud: 'api://someone-else' })],
      ['wrong issuer', await token({}, { iss: 'https://login.microsoftonline.com/evil/v2.0' })],
      ['signed by another key under our kid', await token({}, { key: otherKey })],
      ['signed by another key, unknown kid', await token({}, { key: otherKey, kid: 'k2' })],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`],
      [
        'HS256 with the public key as secret',
        `${b64({ alg: 'HS256', kid: 'k1' })}.${b64(claims)}.c2lnbmF0dXJl`,
      ],
      [
        'payload swapped under a valid signature',
        `${h}.${b64({ ...claims, preferred_username: 'admin@example.com', roles: ['Jit.Admin'] })}.${signature}`,
      ],
      ['garbage', 'not.a.token'],
    ];
    for (const [what, bearer] of cases) {
      const res = await call('POST', 'requests', body, bearer);
      assert.equal(res.status, 401, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
    }
    assert.equal(await countRequests(sandbox), before);
  });

  test('headers that only the sandbox or App Service may set are ignored in jwt mode', async () => {
    const forgedPrincipal = Buffer.from(
      JSON.stringify({
        claims: [
          { typ: 'preferred_username', val: 'admin@example.com' },
          { typ: 'roles', val: 'Jit.Admin' },
        ],
      }),
    ).toString('base64');
    assert.equal(
      (await call('POST', 'requests', body, undefined, { 'x-jit-dev-user': 'admin@example.com' })).status,
      401,
    );
    assert.equal(
      (await call('POST', 'requests', body, undefined, { 'x-ms-client-principal': forgedPrincipal })).status,
      401,
    );
  });

  test('roles come from the token: an admin sees others’ requests, others do not', async () => {
    const mine = await call('POST', 'requests', body, await token());
    const id = mine.body.id as string;
    const bob = await call(
      'GET',
      `requests/${id}`,
      undefined,
      await token({ preferred_username: 'bob@example.com' }),
    );
    assert.equal(bob.status, 404);
    const admin = await call(
      'GET',
      `requests/${id}`,
      undefined,
      await token({ preferred_username: 'carol@example.com', roles: ['Jit.Admin'] }),
    );
    assert.equal(admin.status, 200);
    assert.equal(admin.body.id, id);
  });

  test('a spoofed X-Forwarded-For does not choose the source address', async () => {
    const res = await call('POST', 'requests', { vm: VM, ports: [22], duration: 'PT1M' }, await token(), {
      'x-forwarded-for': '203.0.113.66',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.sourcePrefix, '127.0.0.1/32');
  });

  test('oversized and malformed bodies are refused with 400 and write nothing', async () => {
    const before = await countRequests(sandbox);
    const bearer = await token();
    const huge = { ...body, justification: 'x'.repeat(20_000) };
    const cases: unknown[] = [
      JSON.stringify(huge),
      '{"vm":',
      '[]',
      'null',
      '"text"',
      JSON.stringify({ ...body, ports: Array.from({ length: 40 }, (_, i) => i + 1) }),
    ];
    for (const c of cases) {
      const res = await call('POST', 'requests', c, bearer);
      assert.equal(res.status, 400, `${String(c).slice(0, 40)} -> ${res.status}`);
    }
    assert.equal(await countRequests(sandbox), before);
  });

  test('markup and header injection in free text is stored as text and never reaches a header', async () => {
    const evil = '<script>alert(1)</script>\r\nX-Injected: yes';
    const res = await call('POST', 'requests', { ...body, justification: evil }, await token());
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('x-injected'), null);
    const got = await call('GET', `requests/${res.body.id}`, undefined, await token());
    assert.equal(got.body.justification, evil);
    assert.equal(got.headers.get('content-type'), 'application/json');
  });

  test('fuzzed request bodies never cause a 5xx, and refusals write nothing', async () => {
    const bearer = await token();
    const field = fc.oneof(
      fc.constant(VM),
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.string()), { maxLength: 20 }),
      fc.constantFrom(
        'PT1M',
        'P1Y',
        'PT0S',
        '-PT1H',
        'P99999D',
        '203.0.113.7',
        '0.0.0.0/0',
        '*',
        '::/0',
        '10.0.0.1/24',
        '\u0000',
      ),
    );
    const bodies = fc.oneof(
      fc.record(
        {
          vm: field,
          ports: field,
          duration: field,
          sourcePrefix: field,
          justification: field,
          protocol: field,
        },
        { requiredKeys: [] },
      ),
      fc.dictionary(fc.string({ maxLength: 10 }), field, { maxKeys: 5 }),
      fc.jsonValue(),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (b) => {
        const before = await countRequests(sandbox);
        const res = await call('POST', 'requests', JSON.stringify(b), bearer);
        assert.ok(res.status < 500, `${JSON.stringify(b)} -> ${res.status} ${JSON.stringify(res.body)}`);
        assert.ok([202, 400, 403].includes(res.status), `${JSON.stringify(b)} -> ${res.status}`);
        if (res.status !== 202)
          assert.equal(await countRequests(sandbox), before, `refused ${JSON.stringify(b)} but wrote a row`);
      }),
      { numRuns: 120 },
    );
  });
});

describe('adversarial: request and approval rates per caller', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({
      settings: { JIT_RATE_LIMIT_PER_MINUTE: '3', JIT_APPROVAL_ATTEMPTS_PER_MINUTE: '3' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('past the limit a caller gets 429 with Retry-After and nothing is written; others are unaffected', async () => {
    const body = { vm: VM, ports: [22], duration: 'PT1M', sourcePrefix: '203.0.113.7' };
    for (let i = 0; i < 3; i++)
      assert.equal((await api(sandbox, 'POST', 'requests', body, 'flood@example.com')).status, 202);
    const before = await countRequests(sandbox);
    const limited = await api(sandbox, 'POST', 'requests', body, 'flood@example.com');
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal(await countRequests(sandbox), before);
    assert.equal((await api(sandbox, 'POST', 'requests', body, 'calm@example.com')).status, 202);
  });

  test('past the limit on approval attempts a person at one address gets 429 even with a good link; nothing is decided', async () => {
    const bob = 'bob@example.com';
    const vm = await vmWithPolicy(sandbox, 'rate-appr', { approvers: [`user:${bob}`] });
    const created = await api(
      sandbox,
      'POST',
      'requests',
      { vm: vm.vmId, ports: [22], duration: 'PT10M', sourcePrefix: '203.0.113.9' },
      'dora@example.com',
    );
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = (created.body as { id: string }).id;
    const { token } = linkIn(await approvalMail(sandbox, bob, id), 'approve');
    const csrf = formTokenIn((await getPage(sandbox, token)).text);
    assert.ok(csrf, 'the page offers a decision');
    // A different signature: its first character changed. (Not the last: a 32-byte HMAC in base64url leaves two
    // unused bits in its last character, so A→B there can decode to the very same signature and verify.)
    const signatureAt = token.lastIndexOf('.') + 1;
    const forged =
      token.slice(0, signatureAt) + (token[signatureAt] === 'A' ? 'B' : 'A') + token.slice(signatureAt + 1);

    // Nobody signed in (the sandbox's pages), all from this machine's address: one caller.
    for (let i = 0; i < 3; i++) {
      const refused = await postDecision(sandbox, { token: forged, csrf, decision: 'approve' });
      assert.ok(
        refused.status >= 400 && refused.status < 500 && refused.status !== 429,
        `attempt ${i}: ${refused.status}`,
      );
    }
    const limited = await postDecision(sandbox, { token, csrf, decision: 'approve' });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.match(limited.headers.get('content-type') ?? '', /text\/html/);
    assert.match(limited.text, /too many approval attempts/);
    const still = await api(sandbox, 'GET', `requests/${id}`, undefined, 'dora@example.com');
    assert.equal((still.body as { status: string }).status, 'pending-approval');

    // Another caller from the same address — the approver, signed in — is not held back.
    const approved = await postDecision(
      sandbox,
      { token, csrf, decision: 'approve' },
      { 'x-jit-dev-user': bob },
    );
    assert.equal(approved.status, 200, approved.text.slice(0, 300));
    await waitFor('the approved request to go live', async () => {
      const v = await api(sandbox, 'GET', `requests/${id}`, undefined, 'dora@example.com');
      return (v.body as { status: string }).status === 'active';
    });
  });
});
