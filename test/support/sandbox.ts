/** Helpers for integration tests: a quiet sandbox on free ports, HTTP calls as a named user, and polling. */
import { AUTO_POLICIES_FILE, Sandbox } from '../../dev/sandbox';
import { TABLES } from '../../shared/names';
import type { SandboxOptions } from '../../dev/sandbox';

/** Both demo VMs approved automatically: for tests that drive many grants (demo-win asks an approver otherwise). */
export const AUTO_POLICIES = AUTO_POLICIES_FILE;

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const sandbox = new Sandbox({
    quiet: true,
    // Short retry delays so that failure paths finish within a test's patience.
    host: (h) => ({ ...h, queues: { ...h.queues, visibilityTimeoutInMs: 200, maxPollingIntervalInMs: 200 } }),
    // Chat and webhook deliveries are tested where they are the subject (operators.test.ts); elsewhere they would
    // only add load to timing-sensitive tests.
    chatTargets: false,
    ...options,
  });
  try {
    await sandbox.start();
  } catch (err) {
    // Stop the emulators that did start, or they keep the test process alive after it failed.
    await sandbox.stop().catch(() => undefined);
    throw err;
  }
  return sandbox;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever JSON the API sent
  body: any;
}

/** Calls the sandbox's API (or a host process's) as `user` (the dev-mode header). */
export async function api(
  sandbox: { baseUrl: string },
  method: string,
  path: string,
  body?: unknown,
  user: string | null = 'alice@example.com',
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  const res = await fetch(`${sandbox.baseUrl}/api/${path.replace(/^\//, '')}`, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(user ? { 'x-jit-dev-user': user } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Polls until `check` returns a value other than undefined/false, or fails with what it was waiting for. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutInMs = 20_000,
  intervalInMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutInMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutInMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, intervalInMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How many requests the sandbox holds (one `request` row each): tests of refusals check nothing was written. */
export async function countRequests(sandbox: Sandbox): Promise<number> {
  let n = 0;
  for await (const row of sandbox
    .table(TABLES.requests)
    .listEntities({ queryOptions: { filter: "RowKey eq 'request'" } }))
    if (row) n++;
  return n;
}
