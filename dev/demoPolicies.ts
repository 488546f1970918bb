import type { Policy } from '../shared/domain/types';
import { DEMO } from './arm/emulator';

/** The demo resource group the ARM emulator is seeded with, as a policy scope. */
export const DEMO_RG_SCOPE =
  `/subscriptions/${DEMO.subscriptionId}/resourcegroups/${DEMO.resourceGroup}`.toLowerCase();

/**
 * The sandbox's policies: SSH on anything in demo-rg is approved at once for anyone signed in, from the
 * caller's own address or the documentation ranges used in the examples.
 */
export const DEMO_POLICIES: Policy[] = [
  {
    scope: DEMO_RG_SCOPE,
    ports: [
      { port: 22, protocol: 'Tcp', maxDurationInSeconds: 3 * 3600 },
      { port: 3389, protocol: 'Tcp', maxDurationInSeconds: 3600 },
    ],
    allowedSourcePrefixes: ['my-ip', '203.0.113.0/24', '198.51.100.0/24', '2001:db8::/32'],
    requesters: ['*'],
    approval: { mode: 'auto', approvers: [], required: 0, timeoutInSeconds: 1800 },
    justification: { required: false },
    enforce: false,
  },
];
