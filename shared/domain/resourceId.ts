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

/** Parses a VM id; anything that is not `Microsoft.Compute/virtualMachines` is refused. */
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
  return r;
}

/** The scopes that can cover a VM, most specific first: the VM, its resource group, its subscription. */
export function scopesOf(vmId: string): string[] {
  const r = parseVmId(vmId);
  const sub = `/subscriptions/${r.subscriptionId}`.toLowerCase();
  const rg = `${sub}/resourcegroups/${r.resourceGroup.toLowerCase()}`;
  return [vmId.trim().toLowerCase(), rg, sub];
}
