/**
 * Names the sandbox's demo policies (dev/policies.yaml) use, for the banner of `npm start` and for tests.
 * The policies themselves live only in that file.
 */

/** The demo approvers of demo-win's policy: their mail lands in the sandbox's mail catcher. */
export const DEMO_APPROVERS = ['approver@example.com', 'approver2@example.com'] as const;
