/**
 * Shared between the probe functions (test/fixtures/hostFunctions) and the test that hosts them: how long a
 * handler takes, and every invocation it saw.
 */
export const hostProbe = {
  /** How long each invocation runs. */
  delayInMs: 0,
  runs: [] as Array<{ trigger: 'queue' | 'bus'; body: unknown; at: number }>,
  count(trigger: 'queue' | 'bus', body: unknown): number {
    return this.runs.filter((r) => r.trigger === trigger && JSON.stringify(r.body) === JSON.stringify(body))
      .length;
  },
};
