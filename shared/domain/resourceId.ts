/** ARM resource ids, parsed just enough to find a resource's subscription, group, type and name. */
export interface ResourceId {
  subscriptionId: string;
  resourceGroup: string;
  provider: string;
  type: string;
  name: string;
  /** Child segments after the name, e.g. `['subnets', 'default']`. */
  children: string[];
}

const RESOURCE_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\/([^/]+)((?:\/[^/]+\/[^/]+)*)$/i;

export function parseResourceId(id: string): ResourceId {
  const m = RESOURCE_ID.exec(id.trim());
  if (!m) throw new RangeError('must be an ARM resource id (/subscriptions/…/resourceGroups/…/providers/…)');
  const [, subscriptionId = '', resourceGroup = '', provider = '', type = '', name = '', rest = ''] = m;
  return { subscriptionId, resourceGroup, provider, type, name, children: rest.split('/').filter(Boolean) };
}

/**
 * ARM's naming rules for the parts of a VM id, from "Naming rules and restrictions for Azure resources"
 * (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules):
 * - a subscription id is a GUID;
 * - `resourcegroups`: 1-90 characters, "underscores, hyphens, periods, parentheses, and letters or digits as defined
 *   by the Char.IsLetterOrDigit function" (Unicode categories Lu, Ll, Lt, Lm, Lo, Nd); can't end with a period;
 * - `virtualMachines`: the resource name up to 64 characters; can't use `\ / " [ ] : | < > + = ; , ? * @ &`, can't
 *   start with an underscore, can't end with a period or hyphen (and no spaces or control characters).
 * Checked before any ARM call: an id ARM could not hold is refused here with the rule it breaks, never sent on.
 */
const SUBSCRIPTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RESOURCE_GROUP = /^[\p{Lu}\p{Ll}\p{Lt}\p{Lm}\p{Lo}\p{Nd}_\-.()]{1,90}$/u;
const VM_NAME_FORBIDDEN = /[\\/"[\]:|<>+=;,?*@&\s\p{Cc}\p{Cf}]/u;

function checkNames(r: ResourceId): void {
  if (!SUBSCRIPTION_ID.test(r.subscriptionId))
    throw new RangeError('must name its subscription by id (a GUID)');
  if (!RESOURCE_GROUP.test(r.resourceGroup) || r.resourceGroup.endsWith('.'))
    throw new RangeError(
      'must name a resource group ARM allows: 1 to 90 letters, digits, underscores, hyphens, periods or parentheses, not ending with a period',
    );
  if (r.name.length > 64 || VM_NAME_FORBIDDEN.test(r.name) || r.name.startsWith('_') || /[.-]$/.test(r.name))
    throw new RangeError(
      'must name a virtual machine ARM allows: up to 64 characters, none of \\ / " [ ] : | < > + = ; , ? * @ & or spaces, not starting with _ or ending with . or -',
    );
}

/** Parses a VM id; anything that is not `Microsoft.Compute/virtualMachines`, or that ARM could not hold, is refused. */
export function parseVmId(id: string): ResourceId {
  const r = parseResourceId(id);
  if (
    r.provider.toLowerCase() !== 'microsoft.compute' ||
    r.type.toLowerCase() !== 'virtualmachines' ||
    r.children.length
  ) {
    throw new RangeError(
      'must be the resource id of a virtual machine (…/providers/Microsoft.Compute/virtualMachines/<name>)',
    );
  }
  checkNames(r);
  return r;
}

/** The scopes that can cover a VM, most specific first: the VM, its resource group, its subscription. */
export function scopesOf(vmId: string): string[] {
  const r = parseVmId(vmId);
  const sub = `/subscriptions/${r.subscriptionId}`.toLowerCase();
  const rg = `${sub}/resourcegroups/${r.resourceGroup.toLowerCase()}`;
  return [vmId.trim().toLowerCase(), rg, sub];
}
