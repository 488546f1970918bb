import type { Policy } from '../shared/domain/types';
import { DEMO } from './arm/emulator';

/** The demo resource group the ARM emulator is seeded with, as a policy scope. */
export const DEMO_RG_SCOPE =
  `/subscriptions/${DEMO.subscriptionId}/resourcegroups/${DEMO.resourceGroup}`.toLowerCase();

const DEMO_SOURCES = ['my-ip', '203.0.113.0/24', '198.51.100.0/24', '2001:db8::/32'];

/** The demo approvers: their mail lands in the sandbox's mail catcher. */
export const DEMO_APPROVERS = ['approver@example.com', 'approver2@example.com'] as const;

/**
 * RDP to demo-win needs a justification and one approval from a demo approver, asked by mail (manual approval).
 * Being scoped to the VM, it is the policy for demo-win: the resource group's policy does not add to it.
 */
export const DEMO_WIN_POLICY: Policy = {
  scope: DEMO.windowsVm.id.toLowerCase(),
  ports: [{ port: 3389, protocol: 'Tcp', maxDurationInSeconds: 3600 }],
  allowedSourcePrefixes: DEMO_SOURCES,
  requesters: ['*'],
  approval: {
    mode: 'manual',
    approvers: DEMO_APPROVERS.map((a) => `user:${a}`),
    required: 1,
    timeoutInSeconds: 3600,
  },
  justification: { required: true },
  enforce: false,
};

/**
 * The sandbox's policies: SSH or RDP on anything else in demo-rg is approved at once for anyone signed in, from
 * the caller's own address or the documentation ranges used in the examples; RDP to demo-win needs an approver.
 */
export const DEMO_POLICIES: Policy[] = [
  {
    scope: DEMO_RG_SCOPE,
    ports: [
      { port: 22, protocol: 'Tcp', maxDurationInSeconds: 3 * 3600 },
      { port: 3389, protocol: 'Tcp', maxDurationInSeconds: 3600 },
    ],
    allowedSourcePrefixes: DEMO_SOURCES,
    requesters: ['*'],
    approval: { mode: 'auto', approvers: [], required: 0, timeoutInSeconds: 1800 },
    justification: { required: false },
    enforce: false,
  },
  DEMO_WIN_POLICY,
];
