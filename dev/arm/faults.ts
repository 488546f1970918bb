/**
 * Failure injection: make ARM answer the way it does on a bad day (throttling, 5xx, failed
 * operations) so callers' retry and recovery paths run in tests.
 */

export type FaultMethod = 'GET' | 'PUT' | 'DELETE';

/** Answer matching requests with an ARM error instead of serving them. */
export interface RequestFaultSpec {
  method?: FaultMethod;
  /** Case-insensitive substring of the request path (no query). Default: every ARM request. */
  pathIncludes?: string;
  status: number;
  code: string;
  message?: string;
  /** How many matching requests fail. Default 1; with `rate`, a cap (default: no cap). */
  times?: number;
  /** Probability (0..1) that a matching request fails, instead of failing the next `times`. */
  rate?: number;
  /** Sent as `Retry-After`. Default 1 for 429 and 503 (which the SDK then retries), else absent. */
  retryAfterInSeconds?: number;
}

/**
 * Let matching PUT/DELETE operations be accepted, then end with status `Failed`. As in Azure, the rule is then
 * left in provisioning state `Failed` — with the PUT's content, or as it was before the DELETE — not rolled back
 * (https://learn.microsoft.com/azure/networking/troubleshoot-failed-state).
 */
export interface OperationFaultSpec {
  /** Case-insensitive substring of the PUT/DELETE path. Default: every operation. */
  pathIncludes?: string;
  times: number;
  /** Default `InternalServerError`. */
  code?: string;
  /** Default: Azure's generic internal error text. */
  message?: string;
  /** Restore the rule as it was before the operation instead of leaving it `Failed`. Default false. */
  rollBack?: boolean;
}

export interface InjectedFault {
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
}

interface ActiveRequestFault {
  spec: RequestFaultSpec;
  remaining: number;
}

interface ActiveOperationFault {
  spec: OperationFaultSpec;
  remaining: number;
}

export class FaultInjector {
  private requestFaults: ActiveRequestFault[] = [];
  private operationFaults: ActiveOperationFault[] = [];

  constructor(private readonly random: () => number = Math.random) {}

  inject(spec: RequestFaultSpec): void {
    checkRequestFault(spec);
    const cap = spec.times ?? (spec.rate === undefined ? 1 : Number.POSITIVE_INFINITY);
    this.requestFaults.push({ spec: { ...spec }, remaining: cap });
  }

  failNextOperations(spec: OperationFaultSpec): void {
    if (!Number.isInteger(spec.times) || spec.times < 1) {
      throw new TypeError('failNextOperations: times must be a positive integer.');
    }
    this.operationFaults.push({ spec: { ...spec }, remaining: spec.times });
  }

  clear(): void {
    this.requestFaults = [];
    this.operationFaults = [];
  }

  /** @internal The fault to answer this request with, if any; consumes one use of it. */
  takeRequestFault(method: string, path: string): InjectedFault | undefined {
    for (const fault of this.requestFaults) {
      const { spec } = fault;
      if (spec.method !== undefined && spec.method !== method) continue;
      if (!pathMatches(spec.pathIncludes, path)) continue;
      if (spec.rate !== undefined && this.random() >= spec.rate) continue;
      fault.remaining -= 1;
      if (fault.remaining <= 0) this.requestFaults = this.requestFaults.filter((f) => f !== fault);
      const headers: Record<string, string> = {};
      const retryAfter =
        spec.retryAfterInSeconds ?? (spec.status === 429 || spec.status === 503 ? 1 : undefined);
      if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter);
      return {
        status: spec.status,
        code: spec.code,
        message: spec.message ?? `Injected fault: ${spec.code}.`,
        headers,
      };
    }
    return undefined;
  }

  /** @internal The error an operation on `path` must end with, if any; consumes one use of it. */
  takeOperationFault(path: string): { code: string; message: string; rollBack: boolean } | undefined {
    const fault = this.operationFaults.find((f) => pathMatches(f.spec.pathIncludes, path));
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.operationFaults = this.operationFaults.filter((f) => f !== fault);
    return {
      code: fault.spec.code ?? 'InternalServerError',
      message: fault.spec.message ?? 'An error occurred.',
      rollBack: fault.spec.rollBack ?? false,
    };
  }
}

function pathMatches(pathIncludes: string | undefined, path: string): boolean {
  return pathIncludes === undefined || path.toLowerCase().includes(pathIncludes.toLowerCase());
}

function checkRequestFault(spec: RequestFaultSpec): void {
  if (!Number.isInteger(spec.status) || spec.status < 400 || spec.status > 599) {
    throw new TypeError('inject: status must be an HTTP error status (400-599).');
  }
  if (typeof spec.code !== 'string' || spec.code === '') throw new TypeError('inject: code is required.');
  if (spec.method !== undefined && !['GET', 'PUT', 'DELETE'].includes(spec.method)) {
    throw new TypeError('inject: method must be GET, PUT or DELETE.');
  }
  if (spec.times !== undefined && (!Number.isInteger(spec.times) || spec.times < 1)) {
    throw new TypeError('inject: times must be a positive integer.');
  }
  if (spec.rate !== undefined && !(spec.rate >= 0 && spec.rate <= 1)) {
    throw new TypeError('inject: rate must be between 0 and 1.');
  }
  if (spec.retryAfterInSeconds !== undefined && !(spec.retryAfterInSeconds >= 0)) {
    throw new TypeError('inject: retryAfterInSeconds must be >= 0.');
  }
}
