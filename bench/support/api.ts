/** The few HTTP calls the benchmarks and the soak make, as a dev-mode caller. */
export interface Submitted {
  status: number;
  id?: string;
  /** Problem detail or body text when not 202. */
  detail?: string;
}

export async function submitRequest(
  baseUrl: string,
  body: { vm: string; ports: number[]; duration: string; sourcePrefix: string; justification?: string },
  user = 'bench@example.com',
  timeoutInMs = 30_000,
): Promise<Submitted> {
  try {
    const res = await fetch(`${baseUrl}/api/requests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-jit-dev-user': user },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutInMs),
    });
    const text = await res.text();
    if (res.status === 202) return { status: 202, id: (JSON.parse(text) as { id: string }).id };
    return { status: res.status, detail: text.slice(0, 300) };
  } catch (err) {
    // Connection refused (the host is down), reset, or timed out: the caller did not get an answer.
    return { status: 0, detail: String((err as Error)?.message ?? err) };
  }
}
