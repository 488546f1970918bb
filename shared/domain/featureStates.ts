/**
 * Whether each optional feature is ready, as the configuration found it (shared/config.ts builds the full states,
 * with each feature's settings): a use case that reports readiness needs no more than this.
 */
export type FeatureStates = Record<
  string,
  { ready: true } | { ready: false; problem: { setting: string; reason: string } }
>;
