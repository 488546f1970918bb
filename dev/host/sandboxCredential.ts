import type { TokenCredential } from '@azure/core-auth';

/**
 * What the sandbox's services sign ARM calls with: the ARM emulator accepts it (in Azure the managed identity's
 * token takes its place). A module of its own so that a host process loads no more than it needs.
 */
export const sandboxCredential: TokenCredential = {
  getToken: async () => ({ token: 'sandbox-token', expiresOnTimestamp: Date.now() + 3600_000 }),
};
