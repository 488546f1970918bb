/**
 * Approval link tokens: compact JWS (JWT) signed with HMAC-SHA256 by `jose`. The header carries the key id, so
 * a link signed with the previous key still verifies after a rotation; verification accepts HS256 only, from an
 * explicit allow-list, so `alg: none` or an algorithm switch is refused before any key is used.
 *
 * An approval token names the request (`rid`), the approver entry it was sent for (`sub`), a random nonce
 * (`jti`) and its expiry. A form token (the decision page's CSRF token) has its own `typ` and audience, so one
 * can never stand in for the other, and is bound to one approval token by that token's `jti` and to the person
 * the page was shown to (`prs`: their key, empty when nobody was signed in), so a form fetched by one person
 * cannot be posted by another.
 */
import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose' with { 'resolution-mode': 'import' };
import type { ApprovalKeyring, SigningKey } from '../config';
import type { ApprovalClaims } from '../domain/approval';
import { ApprovalTokenExpired, ApprovalTokenInvalid, CsrfCheckFailed } from '../domain/errors';
import type { ApprovalTokens } from '../domain/ports';

// jose is published as an ES module; this project compiles to CommonJS (as Azure Functions loads it), so it is
// loaded with a dynamic import, once.
const loadJose = () => import('jose');
let josePromise: ReturnType<typeof loadJose> | undefined;
const jose = () => (josePromise ??= loadJose());

const ISSUER = 'azure-jit-access';
const APPROVAL = { typ: 'jit-approval+jwt', audience: 'jit-approval' } as const;
const FORM = { typ: 'jit-form+jwt', audience: 'jit-approval-form' } as const;
/** How long a decision page may sit open before its form must be reloaded. */
const FORM_TOKEN_LIFETIME_IN_SECONDS = 30 * 60;
/** Clock difference between instances that is tolerated on `exp`/`iat`. */
const CLOCK_TOLERANCE_IN_SECONDS = 30;

export class JoseApprovalTokens implements ApprovalTokens {
  private readonly keys: Map<string, Uint8Array>;

  constructor(
    private readonly keyring: ApprovalKeyring,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.keys = new Map(
      [keyring.current, keyring.previous].filter((k): k is SigningKey => !!k).map((k) => [k.kid, k.secret]),
    );
  }

  async issue(claims: { requestId: string; approver: string }, expiresAt: Date): Promise<string> {
    const { SignJWT } = await jose();
    return new SignJWT({ rid: claims.requestId })
      .setProtectedHeader({ alg: 'HS256', kid: this.keyring.current.kid, typ: APPROVAL.typ })
      .setIssuer(ISSUER)
      .setAudience(APPROVAL.audience)
      .setSubject(claims.approver)
      .setJti(randomUUID())
      .setIssuedAt(seconds(this.now()))
      .setExpirationTime(seconds(expiresAt))
      .sign(this.keyring.current.secret);
  }

  async verify(token: string): Promise<ApprovalClaims> {
    const payload = await this.check(token, APPROVAL, ApprovalTokenInvalid);
    const { rid, sub, jti, exp } = payload;
    if (typeof rid !== 'string' || !/^[0-9A-Za-z]{1,64}$/.test(rid) || !sub || !jti || !exp) {
      throw new ApprovalTokenInvalid('the link does not name a request and an approver');
    }
    return { requestId: rid, approver: sub, tokenId: jti, expiresAt: new Date(exp * 1000) };
  }

  async issueFormToken(approvalTokenId: string, personId?: string): Promise<string> {
    const { SignJWT } = await jose();
    const now = seconds(this.now());
    return new SignJWT({ ati: approvalTokenId, prs: personId?.toLowerCase() ?? '' })
      .setProtectedHeader({ alg: 'HS256', kid: this.keyring.current.kid, typ: FORM.typ })
      .setIssuer(ISSUER)
      .setAudience(FORM.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + FORM_TOKEN_LIFETIME_IN_SECONDS)
      .sign(this.keyring.current.secret);
  }

  async verifyFormToken(formToken: string, approvalTokenId: string, personId?: string): Promise<void> {
    let payload: JWTPayload;
    try {
      payload = await this.check(formToken, FORM, CsrfCheckFailed);
    } catch (err) {
      if (err instanceof ApprovalTokenExpired)
        throw new CsrfCheckFailed('the page was open too long: reload it from the link and decide again');
      throw err;
    }
    if (payload.ati !== approvalTokenId)
      throw new CsrfCheckFailed('the form does not belong to this approval link');
    if (payload.prs !== (personId?.toLowerCase() ?? ''))
      throw new CsrfCheckFailed('the form was shown to someone else than who is signed in now');
  }

  /** Verifies signature (by `kid`), algorithm, type, issuer, audience and expiry; maps jose's errors to ours. */
  private async check(
    token: string,
    kind: { typ: string; audience: string },
    Invalid: typeof ApprovalTokenInvalid | typeof CsrfCheckFailed,
  ): Promise<JWTPayload> {
    const { jwtVerify, errors } = await jose();
    if (typeof token !== 'string' || token.length > 4096) throw new Invalid('the token is malformed');
    try {
      const { payload } = await jwtVerify(
        token,
        (header) => {
          const key = header.kid === undefined ? undefined : this.keys.get(header.kid);
          // An unknown key id is a token we did not sign (or signed with a key retired since).
          if (!key) throw new Invalid('the token was signed with a key this deployment does not hold');
          return key;
        },
        {
          algorithms: ['HS256'],
          typ: kind.typ,
          issuer: ISSUER,
          audience: kind.audience,
          requiredClaims: ['exp', 'iat'],
          clockTolerance: CLOCK_TOLERANCE_IN_SECONDS,
          currentDate: this.now(),
        },
      );
      return payload;
    } catch (err) {
      if (err instanceof ApprovalTokenInvalid || err instanceof CsrfCheckFailed) throw err;
      if (err instanceof errors.JWTExpired) throw new ApprovalTokenExpired('the link has expired');
      if (err instanceof errors.JOSEError) throw new Invalid(`the token is not valid (${err.code})`);
      throw err;
    }
  }
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
