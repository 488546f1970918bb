/**
 * The sandbox's pretend Entra tenant: a few people, a guest, groups and app registrations, with the claims Entra
 * would put in their tokens (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference).
 * The local OpenID Connect provider (dev/auth/provider.ts) signs them in; dev/policies.yaml names them.
 */

/** The tenant every demo principal belongs to (`tid`). */
export const DEMO_TENANT_ID = '3f1c0e6b-5d2a-4c8e-9b7f-0a1b2c3d4e5f';
/** The tenant a guest comes from (their `idp`). */
const GUEST_HOME_TENANT_ID = '8e2d1f4a-6b3c-4d9e-8a7f-1b2c3d4e5f60';

/** The app registration that guards the API: App Service Authentication's client, and the tokens' audience. */
export const API_APP = {
  clientId: 'b7c4a2e1-3f5d-4e6a-9c8b-2d1e0f3a4b5c',
  /** Only the sandbox's front end knows it; in Azure a federated credential replaces it (docs/deploy.md). */
  clientSecret: 'sandbox-front-end-secret-not-for-production',
} as const;

/**
 * The sandbox's command-line client: a public client signing people in with the authorization code flow and PKCE,
 * as the Azure CLI does for Entra ID. Its redirect URI is never served: the code is read from the redirect itself.
 */
export const CLI_APP = {
  clientId: 'e3f4a5b6-c7d8-4e9f-a0b1-2c3d4e5f6071',
  redirectUri: 'http://127.0.0.1:9/jit-cli/callback',
} as const;

export interface DemoUser {
  /** What they type at the provider's sign-in form. */
  login: string;
  oid: string;
  name: string;
  /** Member accounts have their UPN; a guest's is the `#EXT#` form Entra gives guests. */
  upn: string;
  email?: string;
  preferredUsername: string;
  groups: string[];
  roles: string[];
  /** `acct`: 0 member, 1 guest. */
  acct: 0 | 1;
  /** `idp`: only for a guest, the issuer of their home tenant. */
  idp?: string;
}

const DEMO_GROUPS = {
  /** Operators who may approve in the sandbox's demo policies. */
  approvers: 'a9e8d7c6-b5a4-4f3e-8d2c-1b0a9f8e7d6c',
} as const;

const member = (login: string, oid: string, name: string, extra: Partial<DemoUser> = {}): DemoUser => ({
  login,
  oid,
  name,
  upn: login,
  email: login,
  preferredUsername: login,
  groups: [],
  roles: [],
  acct: 0,
  ...extra,
});

/** Everyone who can sign in at the sandbox's provider (any password will do: it is a sandbox). */
export const DEMO_USERS: readonly DemoUser[] = [
  member('alice@example.com', '0c6f8a52-1d3b-4e7a-9f2c-5b8d1e4a7c30', 'Alice Requester'),
  member('approver@example.com', '1d7a9b63-2e4c-4f8b-8a3d-6c9e2f5b8d41', 'Ann Approver', {
    groups: [DEMO_GROUPS.approvers],
  }),
  member('approver2@example.com', '2e8bac74-3f5d-4a9c-9b4e-7daf3a6c9e52', 'Ari Approver', {
    groups: [DEMO_GROUPS.approvers],
  }),
  member('admin@example.com', '3f9cbd85-4a6e-4bad-8c5f-8eb04b7daf63', 'Ada Admin', { roles: ['Jit.Admin'] }),
  // A guest whose mail address is an approver's UPN: a UPN entry must not let them in.
  {
    login: 'mallory@fabrikam.example',
    oid: '4aadce96-5b7f-4cbe-9d6a-9fc15c8eb074',
    name: 'Mallory Guest',
    upn: 'mallory_fabrikam.example#EXT#@example.onmicrosoft.com',
    email: 'approver@example.com',
    preferredUsername: 'approver@example.com',
    groups: [],
    roles: [],
    acct: 1,
    idp: `https://sts.windows.net/${GUEST_HOME_TENANT_ID}/`,
  },
];

export interface DemoApp {
  clientId: string;
  clientSecret: string;
  /** Object id of its service principal in the tenant (`oid` and `sub` of its app-only tokens). */
  servicePrincipalId: string;
  roles: string[];
}

/** App registrations that call the API as themselves (client credentials): a pipeline, and one nobody named. */
export const DEMO_APPS = {
  pipeline: {
    clientId: 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f',
    clientSecret: 'sandbox-pipeline-secret',
    servicePrincipalId: '5bbedfa7-6c80-4dcf-8e7b-a0d26d9fc185',
    roles: [],
  },
  stranger: {
    clientId: 'd2e3f4a5-b6c7-4d8e-9fa0-1b2c3d4e5f60',
    clientSecret: 'sandbox-stranger-secret',
    servicePrincipalId: '6ccfe0b8-7d91-4ed0-9f8c-b1e37eaf0296',
    roles: [],
  },
} as const satisfies Record<string, DemoApp>;

export function findDemoUser(login: string): DemoUser | undefined {
  const l = login.trim().toLowerCase();
  return DEMO_USERS.find((u) => u.login === l);
}
