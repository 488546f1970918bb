import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/core-auth';

/**
 * The credential for one connection: the user-assigned managed identity when a client id is configured,
 * otherwise the default chain (system identity in Azure, Azure CLI on a developer's machine).
 */
export function credentialFor(clientId: string | undefined): TokenCredential {
  return clientId ? new ManagedIdentityCredential({ clientId }) : new DefaultAzureCredential();
}
