/** Helpers for approval tests: VMs with their own policies, links from caught mail, the page and its form. */
import { odata } from '@azure/data-tables';
import { JoseApprovalTokens } from '../../shared/adapters/approvalTokens';
import { services } from '../../shared/composition';
import { loadConfig, requireFeature } from '../../shared/config';
import type { Policy } from '../../shared/domain/types';
import { TABLES } from '../../shared/names';
import type { CaughtMail } from '../../dev/mail/catcher';
import type { Sandbox } from '../../dev/sandbox';
import { DEMO } from '../../dev/arm/emulator';
import { ids } from '../../dev/arm/resource-ids';

export const APPROVAL_RG = 'approvals-rg';
export const APPROVAL_SUBNET_NSG = ids.nsg(DEMO.subscriptionId, APPROVAL_RG, 'appr-subnet-nsg');

let nextIp = 10;

/** Adds a VM behind its own NIC NSG and the shared approval subnet NSG, and gives it a manual policy. */
export async function vmWithPolicy(
  sandbox: Sandbox,
  name: string,
  approval: Partial<Policy['approval']> & { approvers: string[] },
  extra: Partial<Policy> = {},
): Promise<{ vmId: string; nsgIds: string[]; policy: Policy }> {
  sandbox.arm.addVm({
    resourceGroup: APPROVAL_RG,
    name,
    nics: [
      {
        name: `${name}-nic`,
        nsg: `${name}-nic-nsg`,
        ipConfigurations: [
          {
            privateIpAddress: `10.9.1.${nextIp++}`,
            subnet: {
              vnet: 'appr-vnet',
              name: 'default',
              vnetAddressPrefix: '10.9.0.0/16',
              addressPrefix: '10.9.1.0/24',
              nsg: 'appr-subnet-nsg',
            },
          },
        ],
      },
    ],
  });
  const vmId = ids.vm(DEMO.subscriptionId, APPROVAL_RG, name);
  const policy: Policy = {
    scope: vmId.toLowerCase(),
    ports: [
      { port: 22, protocol: 'Tcp', maxDurationInSeconds: 3600 },
      { port: 3389, protocol: 'Tcp', maxDurationInSeconds: 3600 },
    ],
    allowedSourcePrefixes: ['my-ip', '203.0.113.0/24', '198.51.100.0/24'],
    requesters: ['*'],
    approval: { mode: 'manual', required: 1, timeoutInSeconds: 3600, ...approval },
    justification: { required: false },
    enforce: false,
    ...extra,
  };
  await services().deps.policies.upsert(policy);
  return {
    vmId,
    nsgIds: [APPROVAL_SUBNET_NSG, ids.nsg(DEMO.subscriptionId, APPROVAL_RG, `${name}-nic-nsg`)],
    policy,
  };
}

/** The JIT rules written for one request in one NSG. */
export function rulesFor(sandbox: Sandbox, nsgId: string, requestId: string) {
  return (sandbox.arm.getNsg(nsgId)?.securityRules ?? []).filter(
    (r) => r.name === `jit-${requestId.toLowerCase()}`,
  );
}

/** The approval mail to `address` for one request. */
export function approvalMail(sandbox: Sandbox, address: string, requestId: string): Promise<CaughtMail> {
  return sandbox.mail.waitFor(
    `the approval mail to ${address} for ${requestId}`,
    (m) =>
      m.to.includes(address) &&
      m.text.includes(requestId) &&
      m.links.some((l) => l.includes('/api/approvals?')),
  );
}

/** The link for one intent in a mail, and the token in it. */
export function linkIn(mail: CaughtMail, intent: 'approve' | 'deny'): { url: string; token: string } {
  const url = mail.links.find((l) => l.includes('/api/approvals?') && l.endsWith(`&intent=${intent}`));
  if (!url) throw new Error(`no ${intent} link in mail "${mail.subject}"`);
  return { url, token: new URL(url).searchParams.get('token') ?? '' };
}

export interface PageResponse {
  status: number;
  headers: Headers;
  text: string;
}

export async function getPage(
  sandbox: Sandbox,
  token: string,
  headers: Record<string, string> = {},
): Promise<PageResponse> {
  const res = await fetch(`${sandbox.baseUrl}/api/approvals?token=${encodeURIComponent(token)}`, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The form token the page carries, if it offers a decision. */
export function formTokenIn(page: string): string | undefined {
  return /name="csrf" value="([^"]+)"/.exec(page)?.[1];
}

export async function postDecision(
  sandbox: Sandbox,
  fields: { token: string; csrf: string; decision: string; comment?: string },
  headers: Record<string, string> = {},
): Promise<PageResponse> {
  const res = await fetch(`${sandbox.baseUrl}/api/approvals`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ comment: '', ...fields }).toString(),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Opens the page as a person would, then posts the decision with the page's form token. */
export async function decide(
  sandbox: Sandbox,
  token: string,
  decision: 'approve' | 'deny',
  comment = '',
  headers: Record<string, string> = {},
): Promise<PageResponse> {
  const page = await getPage(sandbox, token, headers);
  const csrf = formTokenIn(page.text);
  if (!csrf) throw new Error(`the page offers no decision (${page.status}): ${page.text.slice(0, 400)}`);
  return postDecision(sandbox, { token, csrf, decision, comment }, headers);
}

/** The app's own token code, holding the sandbox's current keys (to forge what a test needs). */
export function sandboxTokens(sandbox: Sandbox): JoseApprovalTokens {
  return new JoseApprovalTokens(
    requireFeature(loadConfig(sandbox.settings).features, 'approval').approvalKeys,
  );
}

export async function decisionRows(sandbox: Sandbox, requestId: string) {
  const out: Array<Record<string, unknown>> = [];
  for await (const e of sandbox
    .table(TABLES.approvals)
    .listEntities({ queryOptions: { filter: odata`PartitionKey eq ${requestId}` } }))
    out.push(e);
  return out;
}

/** The request's audit events, oldest first, from its index partition of the audit trail (newest-first RowKeys). */
export async function auditRows(sandbox: Sandbox, requestId: string) {
  const out: Array<Record<string, unknown> & { rowKey: string; action: string; actor: string }> = [];
  for await (const e of sandbox.table(TABLES.audit).listEntities<{ action: string; actor: string }>({
    queryOptions: { filter: odata`PartitionKey eq ${`request|${requestId}`}` },
  }))
    // The per-rule and per-message detail events are docs/audit.md's business; these tests follow decisions.
    if (!/^(grant\.rule-|grant\.expiry-|reconcile\.)/.test(e.action)) out.push(e as never);
  return out.reverse();
}

/** Visible text of a page: tags dropped, entities decoded (enough for asserting what a person reads). */
export function visibleText(page: string): string {
  return page
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}
