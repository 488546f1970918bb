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
import { createHash } from 'node:crypto';
import {
  approvalMail,
  decisionRows,
  formTokenIn,
  getPage,
  linkIn,
  postDecision,
  vmWithPolicy,
} from '../support/approvals';
import { api, countRequests, startSandbox, waitFor } from '../support/sandbox';

const VM = DEMO.linuxVm.id;
const AUDIENCE = 'api://jit-test';
const TENANT = '0f1e2d3c-4b5a-4968-8778-695a4b3c2d1e';
const ALICE_OID = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const BOB_OID = '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e';
const CAROL_OID = '3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f';
/** Claims of a person's v2 access token in the test tenant. */
const person = (login: string, oid: string) => ({
  tid: TENANT,
  oid,
  sub: `${oid}-pairwise`,
  ver: '2.0',
  scp: 'user_impersonation',
  upn: login,
  preferred_username: login,
});

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
    new SignJWT({ ...person('alice@example.com', ALICE_OID), roles: [], ...claims })
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
    issuer = `http://127.0.0.1:${port}/${TENANT}/v2.0`;
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
      ...person('alice@example.com', ALICE_OID),
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
      ['issued for another tenant', await token({ tid: '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a' })],
      ['a v1 token', await token({ ver: '1.0' })],
      ['no object id', await token({ oid: undefined })],
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
      await token(person('bob@example.com', BOB_OID)),
    );
    assert.equal(bob.status, 404);
    const admin = await call(
      'GET',
      `requests/${id}`,
      undefined,
      await token({ ...person('carol@example.com', CAROL_OID), roles: ['Jit.Admin'] }),
    );
    assert.equal(admin.status, 200);
    assert.equal(admin.body.id, id);
  });

  test('an app-only token is no person: it matches no * requester, and writes nothing', async () => {
    const before = await countRequests(sandbox);
    const app = await token({
      oid: '4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a',
      sub: '4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a',
      azp: '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b',
      idtyp: 'app',
      scp: undefined,
      upn: undefined,
      preferred_username: undefined,
    });
    const res = await call('POST', 'requests', body, app);
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.equal(await countRequests(sandbox), before);
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
    const bobCsrf = formTokenIn((await getPage(sandbox, token, { 'x-jit-dev-user': bob })).text)!;
    const approved = await postDecision(
      sandbox,
      { token, csrf: bobCsrf, decision: 'approve' },
      { 'x-jit-dev-user': bob },
    );
    assert.equal(approved.status, 200, approved.text.slice(0, 300));
    await waitFor('the approved request to go live', async () => {
      const v = await api(sandbox, 'GET', `requests/${id}`, undefined, 'dora@example.com');
      return (v.body as { status: string }).status === 'active';
    });
  });
});

describe('adversarial: rates on every changing call, and on audit reads and verification', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({ settings: { JIT_RATE_LIMIT_PER_MINUTE: '3' } });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('extend, revoke, policy changes, audit reads and audit verification each stop at the limit with 429', async () => {
    const admin = { 'x-jit-dev-roles': 'Jit.Admin,Jit.Auditor' };
    const id = (
      await api(
        sandbox,
        'POST',
        'requests',
        { vm: VM, ports: [22], duration: 'PT5M', sourcePrefix: '203.0.113.7' },
        'ext@example.com',
      )
    ).body.id as string;
    await waitFor('the request to be active', async () => {
      const r = await api(sandbox, 'GET', `requests/${id}`, undefined, 'ext@example.com');
      return r.body.status === 'active';
    });
    const calls: Array<[string, () => Promise<{ status: number; headers: Headers }>]> = [
      [
        'extend',
        () => api(sandbox, 'POST', `requests/${id}/extend`, { duration: 'PT1M' }, 'ext@example.com'),
      ],
      ['revoke', () => api(sandbox, 'POST', 'requests/01NOSUCHREQUEST/revoke', {}, 'rev@example.com')],
      [
        'policies',
        () =>
          api(
            sandbox,
            'DELETE',
            `policies?scope=${encodeURIComponent('/subscriptions/00000000-0000-0000-0000-000000000009')}&dryRun=true`,
            undefined,
            'pol@example.com',
            admin,
          ),
      ],
      ['audit', () => api(sandbox, 'GET', 'audit?pageSize=1', undefined, 'aud@example.com', admin)],
      ['verify', () => api(sandbox, 'GET', 'audit/verify', undefined, 'ver@example.com', admin)],
    ];
    for (const [what, call] of calls) {
      for (let i = 0; i < 3; i++) {
        const ok = await call();
        assert.notEqual(ok.status, 429, `${what} #${i + 1}`);
      }
      const limited = await call();
      assert.equal(limited.status, 429, what);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1, what);
    }
    // The limit is the caller's: someone else may still extend their own request right away.
    const other = await api(
      sandbox,
      'POST',
      'requests/01NOSUCHREQUEST/extend',
      { duration: 'PT1M' },
      'calm@example.com',
    );
    assert.equal(other.status, 404);
  });
});

describe('adversarial: input the API must refuse', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox();
  });
  /** Alice asks for SSH to a VM of its own (`tag`) whose policy has Bob approve. */
  const askBobToApprove = async (tag: string) => {
    const vm = await vmWithPolicy(sandbox, tag, { approvers: ['user:bob@example.com'] });
    return api(sandbox, 'POST', 'requests', {
      vm: vm.vmId,
      ports: [22],
      duration: 'PT10M',
      sourcePrefix: '203.0.113.9',
    });
  };
  after(async () => {
    await sandbox?.stop();
  });

  test('durations with fractions of a second, or zero, are refused on submit and on extend; nothing is written', async () => {
    const before = await countRequests(sandbox);
    for (const duration of ['PT0.4S', 'PT1.5S', 'PT0S', 'PT0.0S', 'P0D']) {
      const res = await api(sandbox, 'POST', 'requests', {
        vm: VM,
        ports: [22],
        duration,
        sourcePrefix: '203.0.113.7',
      });
      assert.equal(res.status, 400, duration);
      assert.equal(res.body.errors[0].field, 'duration', duration);
    }
    assert.equal(await countRequests(sandbox), before);
    const res = await api(sandbox, 'POST', 'requests/01ANYREQUEST/extend', { duration: 'PT30.5S' });
    assert.equal(res.status, 400);
  });

  test('Unicode bidirectional controls are refused in a justification and in a decision comment', async () => {
    const before = await countRequests(sandbox);
    const trojan = 'approved by CAB \u202Enosaer on\u202C';
    const res = await api(sandbox, 'POST', 'requests', {
      vm: VM,
      ports: [22],
      duration: 'PT5M',
      sourcePrefix: '203.0.113.7',
      justification: trojan,
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.errors[0].field, 'justification');
    assert.match(res.body.errors[0].reason, /bidirectional control characters \(U\+202E/);
    assert.equal(await countRequests(sandbox), before);

    const bob = 'bob@example.com';
    const created = await askBobToApprove('bidi-appr');
    const { token } = linkIn(await approvalMail(sandbox, bob, created.body.id as string), 'deny');
    const csrf = formTokenIn((await getPage(sandbox, token)).text)!;
    const refused = await postDecision(sandbox, {
      token,
      csrf,
      decision: 'deny',
      comment: `no \u2066reason\u2069`,
    });
    assert.equal(refused.status, 400);
    assert.match(refused.text, /bidirectional control characters/);
  });

  test('a decision posted with Origin: null is refused; a form token works only for whom the page was shown to', async () => {
    const bob = 'bob@example.com';
    const created = await askBobToApprove('origin-appr');
    const id = created.body.id as string;
    const { token } = linkIn(await approvalMail(sandbox, bob, id), 'approve');
    const anonymousCsrf = formTokenIn((await getPage(sandbox, token)).text)!;
    const opaque = await postDecision(
      sandbox,
      { token, csrf: anonymousCsrf, decision: 'approve' },
      { origin: 'null' },
    );
    assert.equal(opaque.status, 403);
    assert.match(opaque.text, /Origin: null/);
    // The page was shown to nobody in particular: a signed-in person cannot post its form.
    const otherPerson = await postDecision(
      sandbox,
      { token, csrf: anonymousCsrf, decision: 'approve' },
      { 'x-jit-dev-user': bob },
    );
    assert.equal(otherPerson.status, 403);
    assert.match(otherPerson.text, /shown to someone else/);
    assert.equal((await decisionRows(sandbox, id)).length, 0);
    // Fetched and posted by the same person, it decides.
    const bobCsrf = formTokenIn((await getPage(sandbox, token, { 'x-jit-dev-user': bob })).text)!;
    const ok = await postDecision(
      sandbox,
      { token, csrf: bobCsrf, decision: 'approve' },
      {
        'x-jit-dev-user': bob,
        origin: sandbox.baseUrl,
      },
    );
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
  });

  test('a crafted continuation token is a 400, never a 500', async () => {
    const auditor = { 'x-jit-dev-roles': 'Jit.Auditor' };
    const fingerprint = (parts: unknown[]) =>
      createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 16);
    const wrap = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const any = fingerprint([null, null, null, null, null]);
    const tokens = [
      wrap({ q: any, c: 'not the service token' }),
      wrap({ q: any, c: Buffer.from('{"nextPartitionKey":1}').toString('base64') }),
      wrap({ q: any, c: Buffer.from('[]').toString('base64') }),
      wrap({
        q: any,
        d: '2026-01-01',
        c: Buffer.from('{"nextPartitionKey":"x","evil":1}').toString('base64'),
      }),
      wrap({ q: any, d: '../../x' }),
      'x'.repeat(5000),
    ];
    for (const t of tokens) {
      const res = await api(
        sandbox,
        'GET',
        `audit?continuationToken=${encodeURIComponent(t)}`,
        undefined,
        'aud@example.com',
        auditor,
      );
      assert.equal(res.status, 400, `${t.slice(0, 60)} -> ${res.status}`);
      assert.equal(res.body.errors[0].field, 'continuationToken');
    }
    for (const t of ['MTIzNA', wrap({ rowKey: 1 }), '%%%']) {
      const res = await api(sandbox, 'GET', `requests?continuationToken=${encodeURIComponent(t)}`);
      assert.equal(res.status, 400, t);
    }
  });

  test('the VM is the one ARM returns: its canonical id is recorded; an id ARM could not hold is refused before any ARM call', async () => {
    const res = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.linuxVm.id.toLowerCase(),
      ports: [22],
      duration: 'PT5M',
      sourcePrefix: '203.0.113.7',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.vmId, DEMO.linuxVm.id);
    // That request goes on to be decided and applied, calling ARM; count from when it has settled.
    await waitFor('the accepted request to settle', async () => {
      const { status } = (await api(sandbox, 'GET', `requests/${res.body.id}`)).body;
      return status === 'active' || status === 'pending-approval';
    });
    const before = await countRequests(sandbox);
    const armCalls = sandbox.arm.log.length;
    const base = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups';
    for (const vm of [
      `${base}/demo-rg/providers/Microsoft.Compute/virtualMachines/..`,
      `${base}/demo-rg/providers/Microsoft.Compute/virtualMachines/demo vm`,
      `${base}/demo-rg/providers/Microsoft.Compute/virtualMachines/${'v'.repeat(65)}`,
      `${base}/demo-rg/providers/Microsoft.Compute/virtualMachines/a@b`,
      `${base}/demo-rg./providers/Microsoft.Compute/virtualMachines/demo-vm`,
      `${base}/${'r'.repeat(91)}/providers/Microsoft.Compute/virtualMachines/demo-vm`,
      `/subscriptions/not-a-guid/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/demo-vm`,
    ]) {
      const refused = await api(sandbox, 'POST', 'requests', {
        vm,
        ports: [22],
        duration: 'PT5M',
        sourcePrefix: '203.0.113.7',
      });
      assert.equal(refused.status, 400, vm);
      assert.equal(refused.body.errors[0].field, 'vm', vm);
    }
    assert.equal(sandbox.arm.log.length, armCalls, 'no ARM call was made for a malformed id');
    assert.equal(await countRequests(sandbox), before);
  });

  test('a submission reads the VM from ARM once: its path carries the canonical id the policy is chosen by', async () => {
    // Manual approval: nothing after the submission (no apply) reads the VM, so every read counted is the submission's.
    const vm = await vmWithPolicy(sandbox, 'read-once', { approvers: ['user:bob@example.com'] });
    const from = sandbox.arm.log.length;
    const res = await api(sandbox, 'POST', 'requests', {
      vm: vm.vmId.toLowerCase(),
      ports: [22],
      duration: 'PT10M',
      sourcePrefix: '203.0.113.9',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.vmId, vm.vmId);
    const vmReads = sandbox.arm.log
      .slice(from)
      .filter((e) => e.method === 'GET' && e.path.toLowerCase() === vm.vmId.toLowerCase());
    assert.equal(vmReads.length, 1, 'one read of the VM');
  });

  test('a VM the deployment may not read: 422 naming the permission, told only to a caller the policy allows', async () => {
    const scope = `/subscriptions/${DEMO.subscriptionId}`;
    const held = sandbox.arm.roles.list().filter((a) => a.scope === scope);
    sandbox.arm.roles.unassign(DEMO.identity.objectId, scope);
    try {
      const before = await countRequests(sandbox);
      const ask = { vm: DEMO.linuxVm.id, duration: 'PT5M', sourcePrefix: '203.0.113.7' };
      const res = await api(sandbox, 'POST', 'requests', { ...ask, ports: [22] });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.permission, 'Microsoft.Compute/virtualMachines/read');
      // Port 80 is in no policy: that caller learns only that, not what the deployment may read.
      const refused = await api(sandbox, 'POST', 'requests', { ...ask, ports: [80] });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.doesNotMatch(JSON.stringify(refused.body), /virtualMachines\/read|lacks/);
      assert.equal(await countRequests(sandbox), before);
    } finally {
      for (const a of held) sandbox.arm.roles.assign(a);
    }
  });
});

describe('adversarial: the caller address behind trusted proxies', () => {
  let sandbox: Sandbox;
  before(async () => {
    // One trusted proxy (say Front Door) in front of the app's own front end. (Not dev mode: that answers only
    // callers whose whole forwarding chain is this machine.)
    sandbox = await startSandbox({ auth: 'jwt', settings: { JIT_TRUSTED_PROXY_HOPS: '1' } });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('my-ip is the address the trusted proxy saw, not whatever the client wrote before it', async () => {
    // The client wrote 192.0.2.1; the trusted proxy appended the address it saw (198.51.100.23), and the app's
    // own front end (here the local host) appended the proxy's.
    const alice = `Bearer ${await sandbox.identity.userToken('alice@example.com')}`;
    const res = await api(sandbox, 'POST', 'requests', { vm: VM, ports: [22], duration: 'PT1M' }, null, {
      authorization: alice,
      'x-forwarded-for': '192.0.2.1, 198.51.100.23:50123',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.sourcePrefix, '198.51.100.23/32');
    // Without the proxy's entry there is no address to grant to "mine".
    const none = await api(sandbox, 'POST', 'requests', { vm: VM, ports: [22], duration: 'PT1M' }, null, {
      authorization: alice,
    });
    assert.equal(none.status, 400);
    assert.equal(none.body.errors[0].field, 'sourcePrefix');
  });
});
