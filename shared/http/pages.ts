/**
 * HTML pages (the approval link's page and the decision it posts): the security headers every page carries,
 * form parsing, the same-origin check of a POST, and the one mapping of errors to an error page (through
 * `toProblem`, so a page and the API say the same thing with the same status).
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { AuthMode } from '../config';
import { requireFeature } from '../config';
import { CsrfCheckFailed, InvalidRequest } from '../domain/errors';
import type { Principal } from '../domain/types';
import { depsFor, services } from '../composition';
import type { Deps } from '../usecases/deps';
import { PAGE_STYLE_SOURCE, errorPage } from '../views/approvalPage';
import { DEV_USER_HEADER, authenticate } from './auth';
import type { HeaderReader } from './auth';
import { MAX_BODY_BYTES, callerAddress } from './handler';
import { toProblem } from './problem';

/**
 * No script, no other origin, no framing; the token in the URL is not sent on as a referrer; nothing is cached
 * (the page holds a form token and shows a request).
 */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': `default-src 'none'; style-src ${PAGE_STYLE_SOURCE}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

export function htmlResponse(
  status: number,
  page: string,
  headers: Record<string, string> = {},
): HttpResponseInit {
  return {
    status,
    headers: { ...headers, ...PAGE_SECURITY_HEADERS, 'Content-Type': 'text/html; charset=utf-8' },
    body: page,
  };
}

export interface PageCall {
  request: HttpRequest;
  context: InvocationContext;
  deps: Deps;
  /** Base URL of the app's pages, without a trailing slash (the origin a decision must be posted from). */
  publicBaseUrl: string;
  /** The signed-in person, where there is one (always in `easyauth` mode). */
  signedIn: Principal | undefined;
  callerAddress: string | undefined;
}

/**
 * Who is signed in. With App Service Authentication someone always is (the platform signs people in before the
 * page is reached). In the sandbox's `dev` mode a browser sends no header, so nobody is, and the link stands for
 * the approver it names.
 */
export function signedInPerson(mode: AuthMode, headers: HeaderReader): Principal | undefined {
  if (mode === 'dev' && !headers.get(DEV_USER_HEADER)) return undefined;
  return authenticate(mode, headers);
}

/**
 * Wraps a page: errors become an HTML page with the status `toProblem` gives them. Tokens are never logged. Pages
 * need approval links and someone signed in: with either feature switched off they answer 503 and say which.
 */
export function pageEndpoint(body: (call: PageCall) => Promise<HttpResponseInit>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const { features } = services().config;
      const { authMode } = requireFeature(features, 'authentication');
      const { publicBaseUrl } = requireFeature(features, 'approval');
      return await body({
        request,
        context,
        deps: depsFor(context),
        publicBaseUrl,
        signedIn: signedInPerson(authMode, request.headers),
        callerAddress: callerAddress(request),
      });
    } catch (err) {
      const problem = toProblem(err);
      const headers: Record<string, string> = { ...problem.headers };
      delete headers['Content-Type'];
      if (problem.status >= 500) {
        context.error(
          JSON.stringify({
            event: 'page.error',
            invocationId: context.invocationId,
            error: String((err as Error)?.stack ?? err),
          }),
        );
      } else {
        context.warn(
          JSON.stringify({
            event: 'approval.refused',
            status: problem.status,
            reason: problem.jsonBody.detail,
          }),
        );
      }
      return htmlResponse(
        problem.status,
        errorPage(problem.jsonBody.title, problem.jsonBody.detail, problem.status < 500),
        headers,
      );
    }
  };
}

/**
 * A decision must be posted from one of our pages. Browsers say where a POST comes from in `Sec-Fetch-Site`; our
 * pages' `no-referrer` policy makes them send `Origin: null` for our own form, so Origin is only checked where
 * `Sec-Fetch-Site` is absent (older browsers). The form token remains the check that does not depend on headers.
 */
export function assertSameOrigin(headers: HeaderReader, publicBaseUrl: string): void {
  const site = headers.get('sec-fetch-site');
  if (site) {
    if (site !== 'same-origin') throw new CsrfCheckFailed(`the form was posted from another site (${site})`);
    return;
  }
  const origin = headers.get('origin');
  if (origin && origin !== 'null' && origin !== new URL(publicBaseUrl).origin)
    throw new CsrfCheckFailed('the form was posted from another origin');
}

/** Reads an `application/x-www-form-urlencoded` body with the API's size limit. */
export async function readForm(request: HttpRequest): Promise<URLSearchParams> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded\b/i.test(type))
    throw new InvalidRequest([
      { field: '(body)', reason: 'must be a form (application/x-www-form-urlencoded)' },
    ]);
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES)
    throw new InvalidRequest([{ field: '(body)', reason: `must be at most ${MAX_BODY_BYTES} bytes` }]);
  return new URLSearchParams(text);
}
