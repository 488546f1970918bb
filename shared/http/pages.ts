/**
 * HTML pages (the approval link's page and the decision it posts): the security headers every page carries,
 * form parsing, the same-origin check of a POST, and the one mapping of errors to an error page (through
 * `toProblem`, so a page and the API say the same thing with the same status).
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { AuthenticationConfig } from '../config';
import { requireFeature } from '../config';
import { ApproverNotAllowed, CsrfCheckFailed, InvalidRequest, Unauthenticated } from '../domain/errors';
import type { Principal } from '../domain/types';
import type { Deps } from '../usecases/deps';
import { NO_SIGN_IN_FOR_APPROVERS } from '../usecases/serving';
import { PAGE_STYLE_SOURCE, errorPage } from '../views/approvalPage';
import { assertLoopbackCaller, hasSignedInHeaders, signInPath } from './auth';
import type { Authenticator, HeaderReader } from './auth';
import { MAX_BODY_BYTES, callerAddress, readBodyText } from './handler';
import type { HttpServices } from './handler';
import { toProblem } from './problem';

/**
 * No script, no other origin, no framing; nothing is cached (the page holds a form token and shows a request).
 * Referrers carry at most the origin (`strict-origin`): the token in the URL never leaves in a Referer, while the
 * form's POST still says which origin it comes from (under `no-referrer` browsers send `Origin: null`, which the
 * decision refuses: it is also what a sandboxed frame or a `data:` page sends).
 */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': `default-src 'none'; style-src ${PAGE_STYLE_SOURCE}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'strict-origin',
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
  /** Everything the host handed this invocation (for the approval limiter, say). */
  services: HttpServices;
  deps: Deps;
  /** Base URL of the app's pages, without a trailing slash (the origin a decision must be posted from). */
  publicBaseUrl: string;
  /** The signed-in person, where there is one. */
  signedIn: Principal | undefined;
  callerAddress: string | undefined;
}

/** What a page does for a browser nobody is signed in on. */
export type AnonymousPolicy =
  /** Send the browser to sign in, and back to this page (the GET of a link). */
  | 'sign-in'
  /** Refuse with 401 (a decision must come from a signed-in person). */
  | 'refuse';

/**
 * Who is signed in on a page. App Service Authentication leaves the approval route open to anonymous callers
 * (infra: `excludedPaths`, the one path the app guards itself) but, as on every route, strips a client-sent
 * principal header and adds the signed-in person's. In the sandbox's `dev` mode a browser sends no header, so
 * nobody is, and the link stands for the approver it names. `jwt` mode has no browser sign-in at all.
 */
export async function signedInPerson(
  config: Pick<AuthenticationConfig, 'authMode'>,
  headers: HeaderReader,
  authenticate: Authenticator,
): Promise<Principal | undefined> {
  if (config.authMode === 'jwt')
    throw new ApproverNotAllowed(`approval pages are not available: ${NO_SIGN_IN_FOR_APPROVERS}`);
  if (!hasSignedInHeaders(config.authMode, headers)) {
    if (config.authMode === 'dev') assertLoopbackCaller(headers);
    return undefined;
  }
  return authenticate(headers);
}

/**
 * Wraps a page: refuses to serve until the start-up checks pass, establishes who is signed in (in `easyauth` mode
 * sending an anonymous browser to sign in first, or refusing, as `anonymous` says), and turns errors into an HTML
 * page with the status `toProblem` gives them. Tokens are never logged. Pages need approval links and someone
 * signed in: with either feature switched off they answer 503 and say which.
 */
export function pageEndpoint(
  body: (call: PageCall) => Promise<HttpResponseInit>,
  anonymous: AnonymousPolicy = 'refuse',
) {
  return async (
    request: HttpRequest,
    context: InvocationContext,
    services: HttpServices,
  ): Promise<HttpResponseInit> => {
    try {
      const authentication = requireFeature(services.config.features, 'authentication');
      const { publicBaseUrl } = requireFeature(services.config.features, 'approval');
      await services.serving();
      const signedIn = await signedInPerson(authentication, request.headers, services.authenticate);
      if (!signedIn && authentication.authMode === 'easyauth') {
        if (anonymous === 'refuse')
          throw new Unauthenticated('sign in, then open the link from the mail again');
        // Back to this very page (its link token included) once signed in: App Service Authentication only
        // redirects to a path of this site (post_login_redirect_uri).
        const here = new URL(request.url);
        return {
          status: 302,
          headers: {
            Location: `${publicBaseUrl}${signInPath(`${here.pathname}${here.search}`)}`,
            'Cache-Control': 'no-store',
            'Referrer-Policy': 'no-referrer',
          },
        };
      }
      return await body({
        request,
        context,
        services,
        deps: services.deps,
        publicBaseUrl,
        signedIn,
        callerAddress: callerAddress(services, request),
      });
    } catch (err) {
      return errorPageResponse(err, context);
    }
  };
}

/**
 * The one mapping of a page's errors to an error page, with the status `toProblem` gives them; also a page's answer
 * while the host's services could not be built (`whenUnavailable` of its declaration).
 */
export function errorPageResponse(err: unknown, context: InvocationContext): HttpResponseInit {
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

/**
 * A decision must be posted from one of our pages. Browsers say where a POST comes from in `Sec-Fetch-Site` and
 * `Origin`; both are checked where present. `Origin: null` is refused: a sandboxed frame, a `data:` page or a
 * redirect across origins sends it, never our own form (its page's referrer policy keeps the origin). A client
 * that sends neither (a script) is left to the form token, which is the check that does not depend on headers.
 */
export function assertSameOrigin(headers: HeaderReader, publicBaseUrl: string): void {
  const site = headers.get('sec-fetch-site');
  if (site && site !== 'same-origin')
    throw new CsrfCheckFailed(`the form was posted from another site (${site})`);
  const origin = headers.get('origin');
  if (origin === null) return;
  if (origin === 'null')
    throw new CsrfCheckFailed('the form was posted from an opaque origin (Origin: null)');
  if (origin !== new URL(publicBaseUrl).origin)
    throw new CsrfCheckFailed('the form was posted from another origin');
}

/** Reads an `application/x-www-form-urlencoded` body with the API's size limit, read as it streams in. */
export async function readForm(request: HttpRequest): Promise<URLSearchParams> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded\b/i.test(type))
    throw new InvalidRequest([
      { field: '(body)', reason: 'must be a form (application/x-www-form-urlencoded)' },
    ]);
  return new URLSearchParams(await readBodyText(request, MAX_BODY_BYTES));
}
