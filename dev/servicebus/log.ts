/**
 * The emulator's error log. An exception escaping a rhea handler or a timer fails nothing visibly (the client
 * just waits for a reply that never comes), so every such path is guarded and logs a stable event name.
 */

export function logError(event: string, error: unknown, details: Record<string, unknown> = {}): void {
  console.error(`servicebus-emulator ${event}`, {
    ...details,
    ...(error === undefined ? {} : { error: describe(error) }),
  });
}

export function guarded(event: string, action: () => void): void {
  try {
    action();
  } catch (error) {
    logError(event, error);
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? error.message;
  if (typeof error === 'object' && error !== null) return JSON.stringify(error);
  return String(error);
}

export function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`rhea event without a ${what}.`);
  return value;
}
