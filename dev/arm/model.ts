/**
 * In-memory ARM state: VMs, NICs, VNets/subnets and NSGs, and the rule operations on NSGs.
 *
 * Every method is synchronous, so requests are applied one at a time in arrival order; the only
 * asynchrony is an operation's completion after `operationLatencyInMs`, which is what lets a second
 * writer collide with an operation in flight.
 */
import { randomUUID } from 'node:crypto';

import ipaddr from 'ipaddr.js';

import { ArmError, armErrors } from './errors';
import { assertNsgLimits } from './limits';
import type { OperationRecord, OperationRegistry } from './operations';
import { COMPUTE, NETWORK, ids, key, resourceGroupId, resourceId } from './resource-ids';
import type {
  ArmSecurityRule,
  NicSpec,
  NsgRef,
  NsgState,
  OsType,
  ProvisioningState,
  SecurityRuleInput,
  SubnetSpec,
  VmSpec,
} from './types';
import { addressFamily, validateRuleName, validateSecurityRule, type RuleDefinition } from './validation';

export const DEFAULT_SUBSCRIPTION_ID = '00000000-0000-0000-0000-000000000001';
export const DEFAULT_LOCATION = 'westeurope';

type OperationFailure = { code: string; message: string; rollBack?: boolean };

/** How a write to an NSG with an operation in flight is refused (see ArmEmulatorOptions.busyAnswer). */
export type BusyAnswer = 'AnotherOperationInProgress' | 'RetryableError';

interface RuleRecord {
  name: string;
  definition: RuleDefinition;
  /** The last operation on it ended `Failed`: ARM shows it with `provisioningState: Failed` until a write succeeds. */
  failed?: boolean;
}

interface PendingOperation {
  /** `nsg`: a PUT of the whole NSG, whose rules changed at once; it holds the NSG until it completes. */
  kind: 'put' | 'delete' | 'nsg';
  /** The rule a rule operation is about ('' for an NSG PUT). */
  ruleKey: string;
  /** Committed rule before the operation; restored if the operation fails and is set to roll back. */
  previous: RuleRecord | undefined;
  record: OperationRecord;
  failure: OperationFailure | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface NsgRecord {
  id: string;
  name: string;
  location: string;
  subscriptionId: string;
  resourceGroup: string;
  resourceGuid: string;
  etag: string;
  /** Visible rules: during a PUT the new version (Updating), during a DELETE the old one (Deleting). */
  rules: Map<string, RuleRecord>;
  nicIds: string[];
  subnetIds: string[];
  pending: PendingOperation | undefined;
  /**
   * `properties.flushConnection` (NetworkSecurityGroupPropertiesFormat in
   * specification/network/resource-manager/Microsoft.Network/stable/2024-05-01/networkSecurityGroup.json): "When
   * enabled, flows created from Network Security Group connections will be re-evaluated when rules are updates.
   * Initial enablement will trigger re-evaluation." Default false.
   */
  flushConnection: boolean;
  /** How often flows were re-evaluated: on enabling flushConnection, and on each rule change while it is on. */
  flowReevaluations: number;
}

interface SubnetRecord {
  id: string;
  name: string;
  etag: string;
  addressPrefixes: string[];
  nsgId: string | undefined;
  ipConfigurationIds: string[];
}

interface VnetRecord {
  id: string;
  name: string;
  location: string;
  subscriptionId: string;
  resourceGroup: string;
  resourceGuid: string;
  etag: string;
  addressPrefixes: string[];
  subnets: Map<string, SubnetRecord>;
}

interface IpConfigurationRecord {
  id: string;
  name: string;
  privateIpAddress: string;
  version: 'IPv4' | 'IPv6';
  primary: boolean;
  subnetId: string;
}

interface NicRecord {
  id: string;
  name: string;
  location: string;
  subscriptionId: string;
  resourceGroup: string;
  resourceGuid: string;
  etag: string;
  primary: boolean;
  macAddress: string;
  nsgId: string | undefined;
  /** Resource id of the VM the NIC is attached to. */
  virtualMachineId: string;
  ipConfigurations: IpConfigurationRecord[];
}

interface VmRecord {
  id: string;
  name: string;
  location: string;
  subscriptionId: string;
  resourceGroup: string;
  vmId: string;
  osType: OsType;
  vmSize: string;
  nicIds: string[];
  timeCreated: string;
}

export interface ArmModelOptions {
  operations: OperationRegistry;
  operationLatencyInMs: number;
  /** Absolute status URL of an operation, quoted in AnotherOperationInProgress messages. */
  operationUrl: (record: OperationRecord) => string;
  busyAnswer: BusyAnswer;
  /** `Retry-After` of a `429 RetryableError` (the operation's own polling hint). */
  operationRetryAfterInSeconds: number;
}

/** Where a security rule lives, as named in a request path. */
export interface RuleAddress {
  subscriptionId: string;
  resourceGroup: string;
  nsgName: string;
  ruleName: string;
}

export interface PutRuleResult {
  created: boolean;
  rule: ArmSecurityRule;
  operation: OperationRecord;
}

export class ArmModel {
  private readonly subscriptions = new Set<string>();
  /** Keyed by the lower-cased resource group id; value is the canonical resource group name. */
  private readonly resourceGroups = new Map<string, string>();
  private readonly vms = new Map<string, VmRecord>();
  private readonly nics = new Map<string, NicRecord>();
  private readonly vnets = new Map<string, VnetRecord>();
  private readonly nsgs = new Map<string, NsgRecord>();
  /** Private addresses in use, keyed `subnet id|address`, valued with the NIC's name (an estate of 10,000 VMs). */
  private readonly allocatedIps = new Map<string, string>();

  constructor(private readonly options: ArmModelOptions) {}

  // ---------------------------------------------------------------------------------------------
  // Building the world

  addVm(spec: VmSpec): void {
    const subscriptionId = spec.subscriptionId ?? DEFAULT_SUBSCRIPTION_ID;
    const location = spec.location ?? DEFAULT_LOCATION;
    const resourceGroup = this.canonicalResourceGroup(subscriptionId, spec.resourceGroup);
    const vmResourceId = ids.vm(subscriptionId, resourceGroup, spec.name);
    // Check the whole spec before creating anything, so a bad spec leaves no half-built network.
    this.checkVmSpec(spec, subscriptionId, resourceGroup, vmResourceId);

    this.registerResourceGroup(subscriptionId, resourceGroup);
    const nicIds = spec.nics.map((nicSpec, index) =>
      this.createNic(nicSpec, index === 0, { subscriptionId, resourceGroup, location, vmResourceId }),
    );
    this.vms.set(key(vmResourceId), {
      id: vmResourceId,
      name: spec.name,
      location,
      subscriptionId,
      resourceGroup,
      vmId: spec.vmId ?? randomUUID(),
      osType: spec.osType ?? 'Linux',
      vmSize: spec.vmSize ?? 'Standard_B2s',
      nicIds,
      timeCreated: new Date().toISOString(),
    });
  }

  private checkVmSpec(
    spec: VmSpec,
    subscriptionId: string,
    resourceGroup: string,
    vmResourceId: string,
  ): void {
    const fail = (reason: string): never => {
      throw new Error(`addVm(${spec.name}): ${reason}`);
    };
    if (!spec.name) fail('name is required.');
    if (this.vms.has(key(vmResourceId))) fail('the VM already exists.');
    if (spec.nics.length === 0) fail('a VM needs at least one NIC.');
    const seenIps = new Map<string, string>();
    const nicKeys = new Set<string>();
    for (const nic of spec.nics) {
      const nicKey = key(ids.nic(subscriptionId, resourceGroup, nic.name));
      if (this.nics.has(nicKey) || nicKeys.has(nicKey)) fail(`NIC ${nic.name} already exists.`);
      nicKeys.add(nicKey);
      if (nic.ipConfigurations.length === 0) fail(`NIC ${nic.name} needs at least one IP configuration.`);
      nic.ipConfigurations.forEach((ipConfiguration, index) => {
        const address = ipConfiguration.privateIpAddress;
        const family = addressFamily(address);
        if (family === undefined || address.includes('/')) fail(`${address} is not an IP address.`);
        if (index === 0 && family !== 'IPv4')
          fail(`the primary IP configuration of ${nic.name} must be IPv4.`);
        const subnet = ipConfiguration.subnet;
        const subnetRg = this.canonicalResourceGroup(subscriptionId, subnet.resourceGroup ?? resourceGroup);
        const subnetId = ids.subnet(subscriptionId, subnetRg, subnet.vnet, subnet.name);
        const prefix = this.subnetPrefixFor(subnet, subnetId, address);
        if (!inPrefix(address, prefix)) fail(`${address} is outside subnet prefix ${prefix}.`);
        const ipKey = ArmModel.ipKey(subnetId, address);
        const holder = this.allocatedIps.get(ipKey) ?? seenIps.get(ipKey);
        if (holder !== undefined) fail(`${address} is already used by ${holder}.`);
        seenIps.set(ipKey, nic.name);
        const existing = this.findSubnet(subnetId);
        if (existing && subnet.nsg !== undefined) {
          const wanted = this.nsgIdFor(subnet.nsg, subscriptionId, subnetRg);
          if (key(wanted) !== key(existing.nsgId ?? '')) {
            fail(
              `subnet ${existing.id} already exists with NSG ${existing.nsgId ?? '(none)'}, not ${wanted}.`,
            );
          }
        }
      });
    }
  }

  private static ipKey(subnetId: string, address: string): string {
    return `${key(subnetId)}|${ipaddr.parse(address).toNormalizedString()}`;
  }

  private createNic(
    spec: NicSpec,
    primary: boolean,
    vm: { subscriptionId: string; resourceGroup: string; location: string; vmResourceId: string },
  ): string {
    const nicId = ids.nic(vm.subscriptionId, vm.resourceGroup, spec.name);
    const nsgId =
      spec.nsg === undefined
        ? undefined
        : this.ensureNsg(spec.nsg, vm.subscriptionId, vm.resourceGroup, vm.location);
    const ipConfigurations = spec.ipConfigurations.map((ipSpec, index): IpConfigurationRecord => {
      const name = ipSpec.name ?? `ipconfig${index + 1}`;
      const id = `${nicId}/ipConfigurations/${name}`;
      const subnet = this.ensureSubnet(ipSpec.subnet, ipSpec.privateIpAddress, vm);
      subnet.ipConfigurationIds.push(id);
      return {
        id,
        name,
        privateIpAddress: ipSpec.privateIpAddress,
        version: addressFamily(ipSpec.privateIpAddress) === 'IPv6' ? 'IPv6' : 'IPv4',
        primary: index === 0,
        subnetId: subnet.id,
      };
    });
    this.nics.set(key(nicId), {
      id: nicId,
      name: spec.name,
      location: vm.location,
      subscriptionId: vm.subscriptionId,
      resourceGroup: vm.resourceGroup,
      resourceGuid: randomUUID(),
      etag: newEtag(),
      primary,
      macAddress: randomMac(),
      nsgId,
      virtualMachineId: vm.vmResourceId,
      ipConfigurations,
    });
    if (nsgId !== undefined) this.requireNsgRecordById(nsgId).nicIds.push(nicId);
    for (const c of ipConfigurations)
      this.allocatedIps.set(ArmModel.ipKey(c.subnetId, c.privateIpAddress), spec.name);
    return nicId;
  }

  private ensureSubnet(
    spec: SubnetSpec,
    address: string,
    vm: { subscriptionId: string; resourceGroup: string; location: string },
  ): SubnetRecord {
    const resourceGroup = this.canonicalResourceGroup(
      vm.subscriptionId,
      spec.resourceGroup ?? vm.resourceGroup,
    );
    this.registerResourceGroup(vm.subscriptionId, resourceGroup);
    const vnetId = ids.vnet(vm.subscriptionId, resourceGroup, spec.vnet);
    const family = addressFamily(address) === 'IPv6' ? 'IPv6' : 'IPv4';
    let vnet = this.vnets.get(key(vnetId));
    if (!vnet) {
      vnet = {
        id: vnetId,
        name: spec.vnet,
        location: vm.location,
        subscriptionId: vm.subscriptionId,
        resourceGroup,
        resourceGuid: randomUUID(),
        etag: newEtag(),
        addressPrefixes: [],
        subnets: new Map(),
      };
      this.vnets.set(key(vnetId), vnet);
    }
    if (!vnet.addressPrefixes.some((p) => familyOfPrefix(p) === family)) {
      vnet.addressPrefixes.push(
        ofFamily(spec.vnetAddressPrefix, family) ?? defaultPrefix(address, family === 'IPv4' ? 16 : 48),
      );
    }
    let subnet = vnet.subnets.get(key(spec.name));
    if (!subnet) {
      const nsgId =
        spec.nsg === undefined
          ? undefined
          : this.ensureNsg(spec.nsg, vm.subscriptionId, resourceGroup, vm.location);
      subnet = {
        id: ids.subnet(vm.subscriptionId, resourceGroup, vnet.name, spec.name),
        name: spec.name,
        etag: vnet.etag,
        addressPrefixes: [],
        nsgId,
        ipConfigurationIds: [],
      };
      vnet.subnets.set(key(spec.name), subnet);
      if (nsgId !== undefined) this.requireNsgRecordById(nsgId).subnetIds.push(subnet.id);
    }
    if (!subnet.addressPrefixes.some((p) => familyOfPrefix(p) === family)) {
      subnet.addressPrefixes.push(this.subnetPrefixFor(spec, subnet.id, address));
    }
    return subnet;
  }

  /** The subnet prefix an address must fall in: the existing one of its family, or the one to create. */
  private subnetPrefixFor(spec: SubnetSpec, subnetId: string, address: string): string {
    const family = addressFamily(address) === 'IPv6' ? 'IPv6' : 'IPv4';
    const existing = this.findSubnet(subnetId)?.addressPrefixes.find((p) => familyOfPrefix(p) === family);
    return (
      existing ?? ofFamily(spec.addressPrefix, family) ?? defaultPrefix(address, family === 'IPv4' ? 24 : 64)
    );
  }

  private findSubnet(subnetId: string): SubnetRecord | undefined {
    const vnetId = subnetId.slice(0, subnetId.toLowerCase().lastIndexOf('/subnets/'));
    const name = subnetId.slice(subnetId.lastIndexOf('/') + 1);
    return this.vnets.get(key(vnetId))?.subnets.get(key(name));
  }

  private nsgIdFor(ref: NsgRef, subscriptionId: string, defaultResourceGroup: string): string {
    const { name, resourceGroup } =
      typeof ref === 'string' ? { name: ref, resourceGroup: defaultResourceGroup } : ref;
    const existing = this.nsgs.get(key(ids.nsg(subscriptionId, resourceGroup, name)));
    return (
      existing?.id ??
      ids.nsg(subscriptionId, this.canonicalResourceGroup(subscriptionId, resourceGroup), name)
    );
  }

  /** Returns the id of the referenced NSG, creating it (with Azure's default rules) if needed. */
  private ensureNsg(
    ref: NsgRef,
    subscriptionId: string,
    defaultResourceGroup: string,
    location: string,
  ): string {
    const id = this.nsgIdFor(ref, subscriptionId, defaultResourceGroup);
    if (!this.nsgs.has(key(id))) {
      const resourceGroup = this.canonicalResourceGroup(
        subscriptionId,
        typeof ref === 'string' ? defaultResourceGroup : ref.resourceGroup,
      );
      this.registerResourceGroup(subscriptionId, resourceGroup);
      this.nsgs.set(key(id), {
        id,
        name: id.slice(id.lastIndexOf('/') + 1),
        location,
        subscriptionId,
        resourceGroup,
        resourceGuid: randomUUID(),
        etag: newEtag(),
        rules: new Map(),
        nicIds: [],
        subnetIds: [],
        pending: undefined,
        flushConnection: false,
        flowReevaluations: 0,
      });
    }
    return id;
  }

  private canonicalResourceGroup(subscriptionId: string, resourceGroup: string): string {
    return this.resourceGroups.get(key(resourceGroupId(subscriptionId, resourceGroup))) ?? resourceGroup;
  }

  private registerResourceGroup(subscriptionId: string, resourceGroup: string): void {
    this.subscriptions.add(key(subscriptionId));
    const rgKey = key(resourceGroupId(subscriptionId, resourceGroup));
    if (!this.resourceGroups.has(rgKey)) this.resourceGroups.set(rgKey, resourceGroup);
  }

  // ---------------------------------------------------------------------------------------------
  // Reads, answering with ARM errors for what does not exist

  requireResourceGroup(subscriptionId: string, resourceGroup: string): void {
    this.requireSubscription(subscriptionId);
    if (!this.resourceGroups.has(key(resourceGroupId(subscriptionId, resourceGroup)))) {
      throw armErrors.resourceGroupNotFound(resourceGroup);
    }
  }

  requireSubscription(subscriptionId: string): void {
    if (!this.subscriptions.has(key(subscriptionId))) throw armErrors.subscriptionNotFound(subscriptionId);
  }

  getVm(subscriptionId: string, resourceGroup: string, name: string): object {
    this.requireResourceGroup(subscriptionId, resourceGroup);
    const vm = this.vms.get(key(ids.vm(subscriptionId, resourceGroup, name)));
    if (!vm) throw armErrors.resourceNotFound(`${COMPUTE}/virtualMachines`, name, resourceGroup);
    return vmJson(vm);
  }

  listVms(subscriptionId: string, resourceGroup?: string): object[] {
    return this.inScope(this.vms, subscriptionId, resourceGroup).map((vm) => vmJson(vm));
  }

  getNic(subscriptionId: string, resourceGroup: string, name: string): object {
    this.requireResourceGroup(subscriptionId, resourceGroup);
    const nic = this.nics.get(key(ids.nic(subscriptionId, resourceGroup, name)));
    if (!nic) throw armErrors.resourceNotFound(`${NETWORK}/networkInterfaces`, name, resourceGroup);
    return nicJson(nic);
  }

  listNics(subscriptionId: string, resourceGroup?: string): object[] {
    return this.inScope(this.nics, subscriptionId, resourceGroup).map(nicJson);
  }

  listVnets(subscriptionId: string, resourceGroup?: string): object[] {
    return this.inScope(this.vnets, subscriptionId, resourceGroup).map(vnetJson);
  }

  getVnet(subscriptionId: string, resourceGroup: string, name: string): object {
    return vnetJson(this.requireVnet(subscriptionId, resourceGroup, name));
  }

  getSubnet(subscriptionId: string, resourceGroup: string, vnetName: string, name: string): object {
    const vnet = this.requireVnet(subscriptionId, resourceGroup, vnetName);
    const subnet = vnet.subnets.get(key(name));
    if (!subnet)
      throw armErrors.nestedResourceNotFound(ids.subnet(subscriptionId, resourceGroup, vnetName, name));
    return subnetJson(subnet);
  }

  listSubnets(subscriptionId: string, resourceGroup: string, vnetName: string): object[] {
    return [...this.requireVnet(subscriptionId, resourceGroup, vnetName).subnets.values()].map(subnetJson);
  }

  private requireVnet(subscriptionId: string, resourceGroup: string, name: string): VnetRecord {
    this.requireResourceGroup(subscriptionId, resourceGroup);
    const vnet = this.vnets.get(key(ids.vnet(subscriptionId, resourceGroup, name)));
    if (!vnet) throw armErrors.resourceNotFound(`${NETWORK}/virtualNetworks`, name, resourceGroup);
    return vnet;
  }

  getNsg(subscriptionId: string, resourceGroup: string, name: string): object {
    return nsgJson(this.requireNsg(subscriptionId, resourceGroup, name));
  }

  listNsgs(subscriptionId: string, resourceGroup?: string): object[] {
    return this.inScope(this.nsgs, subscriptionId, resourceGroup).map(nsgJson);
  }

  getRule(address: RuleAddress): ArmSecurityRule {
    const nsg = this.requireNsg(address.subscriptionId, address.resourceGroup, address.nsgName);
    const rule = nsg.rules.get(key(address.ruleName));
    if (!rule) throw armErrors.nestedResourceNotFound(ids.rule(nsg.id, address.ruleName));
    return ruleJson(nsg, rule);
  }

  listRules(subscriptionId: string, resourceGroup: string, nsgName: string): ArmSecurityRule[] {
    const nsg = this.requireNsg(subscriptionId, resourceGroup, nsgName);
    return [...nsg.rules.values()].map((rule) => ruleJson(nsg, rule));
  }

  private requireNsg(subscriptionId: string, resourceGroup: string, name: string): NsgRecord {
    this.requireResourceGroup(subscriptionId, resourceGroup);
    const nsg = this.nsgs.get(key(ids.nsg(subscriptionId, resourceGroup, name)));
    if (!nsg) throw armErrors.resourceNotFound(`${NETWORK}/networkSecurityGroups`, name, resourceGroup);
    return nsg;
  }

  private requireNsgRecordById(id: string): NsgRecord {
    const nsg = this.nsgs.get(key(id));
    if (!nsg) throw new Error(`The emulator has no NSG with id ${id}.`);
    return nsg;
  }

  private inScope<T extends { subscriptionId: string; resourceGroup: string }>(
    records: Map<string, T>,
    subscriptionId: string,
    resourceGroup: string | undefined,
  ): T[] {
    if (resourceGroup === undefined) this.requireSubscription(subscriptionId);
    else this.requireResourceGroup(subscriptionId, resourceGroup);
    return [...records.values()].filter(
      (r) =>
        key(r.subscriptionId) === key(subscriptionId) &&
        (resourceGroup === undefined || key(r.resourceGroup) === key(resourceGroup)),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Rule writes (long-running operations)

  /**
   * Accepts a rule PUT: validates it, shows it as `Updating` and completes it after the operation
   * latency. `takeFailure` is consulted only once an operation is really started.
   */
  beginPutRule(
    address: RuleAddress,
    body: unknown,
    takeFailure: () => OperationFailure | undefined,
    apiVersion: string,
  ): PutRuleResult {
    this.requireResourceGroup(address.subscriptionId, address.resourceGroup);
    const nsg = this.nsgs.get(key(ids.nsg(address.subscriptionId, address.resourceGroup, address.nsgName)));
    if (!nsg) throw armErrors.parentResourceNotFound(address.nsgName);
    validateRuleName(address.ruleName);
    this.assertNoOperationInProgress(nsg);
    const ruleKey = key(address.ruleName);
    const previous = nsg.rules.get(ruleKey);
    const name = previous?.name ?? address.ruleName;
    const definition = validateSecurityRule(ids.rule(nsg.id, name), body);
    assertNoConflict(nsg, ruleKey, name, definition);
    assertLimitsAfter(nsg, ruleKey, definition);

    const next: RuleRecord = { name, definition };
    const record = this.options.operations.create(nsg.subscriptionId, nsg.location, apiVersion);
    nsg.pending = { kind: 'put', ruleKey, previous, record, failure: takeFailure(), timer: undefined };
    nsg.rules.set(ruleKey, next);
    nsg.etag = newEtag();
    // Snapshot before scheduling: with no latency the operation completes at once, but the PUT
    // response still reports the rule as Updating, as Azure's does.
    const rule = ruleJson(nsg, next);
    this.schedule(nsg);
    return { created: previous === undefined, rule, operation: record };
  }

  /** Accepts a rule DELETE; undefined when there is nothing to delete (ARM answers 204). */
  beginDeleteRule(
    address: RuleAddress,
    takeFailure: () => OperationFailure | undefined,
    apiVersion: string,
  ): OperationRecord | undefined {
    this.requireResourceGroup(address.subscriptionId, address.resourceGroup);
    const nsg = this.nsgs.get(key(ids.nsg(address.subscriptionId, address.resourceGroup, address.nsgName)));
    const ruleKey = key(address.ruleName);
    const previous = nsg?.rules.get(ruleKey);
    if (!nsg || !previous) return undefined;
    this.assertNoOperationInProgress(nsg);
    const record = this.options.operations.create(nsg.subscriptionId, nsg.location, apiVersion);
    nsg.pending = { kind: 'delete', ruleKey, previous, record, failure: takeFailure(), timer: undefined };
    nsg.etag = newEtag();
    this.schedule(nsg);
    return record;
  }

  /**
   * One operation at a time per NSG: a rule write or delete puts the NSG in `Updating`, and another write meanwhile is
   * refused. Seen as 429 RetryableError naming the running PutSecurityRuleOperation ("Resource is in Updating state
   * and the last operation that updated/is updating the resource is PutSecurityRuleOperation",
   * https://github.com/hashicorp/terraform/issues/7986) and as 409 AnotherOperationInProgress (errors.ts); the
   * azurerm provider serialises rule writes per NSG for this reason ("the Azure API mutates the same underlying
   * object", https://github.com/hashicorp/terraform-provider-azurerm/issues/15631).
   */
  private assertNoOperationInProgress(nsg: NsgRecord): void {
    const pending = nsg.pending;
    if (!pending) return;
    if (this.options.busyAnswer === 'RetryableError') {
      throw armErrors.retryableDueToAnotherOperation(
        {
          put: 'PutSecurityRuleOperation',
          delete: 'DeleteSecurityRuleOperation',
          nsg: 'PutNetworkSecurityGroupOperation',
        }[pending.kind],
        pending.record.id,
        nsg.id,
        this.options.operationRetryAfterInSeconds,
      );
    }
    throw armErrors.anotherOperationInProgress(this.options.operationUrl(pending.record));
  }

  private schedule(nsg: NsgRecord): void {
    const pending = nsg.pending;
    if (!pending) return;
    if (this.options.operationLatencyInMs <= 0) {
      this.complete(nsg);
      return;
    }
    pending.timer = setTimeout(() => this.complete(nsg), this.options.operationLatencyInMs);
  }

  private complete(nsg: NsgRecord): void {
    const pending = nsg.pending;
    if (!pending) return;
    clearTimeout(pending.timer);
    nsg.pending = undefined;
    if (pending.kind === 'nsg') {
      // Its rule changes took effect when it was accepted (putNsg).
      this.options.operations.finish(pending.record);
      return;
    }
    const rule = nsg.rules.get(pending.ruleKey);
    if (pending.failure?.rollBack) {
      if (pending.previous) nsg.rules.set(pending.ruleKey, pending.previous);
      else nsg.rules.delete(pending.ruleKey);
    } else if (pending.failure) {
      // Network RP does not roll a failed operation back: the rule stays, as written by a PUT or as it was before a
      // DELETE, in provisioning state `Failed` ("Last operation on the resource wasn't successful") until another
      // write succeeds. https://learn.microsoft.com/azure/networking/troubleshoot-failed-state
      if (rule) rule.failed = true;
    } else if (pending.kind === 'delete') {
      nsg.rules.delete(pending.ruleKey);
    } else if (rule) {
      rule.failed = false;
    }
    if (!pending.failure) noteRuleChange(nsg);
    nsg.etag = newEtag();
    this.options.operations.finish(pending.record, pending.failure);
  }

  /**
   * A PUT of the whole NSG (NetworkSecurityGroups_CreateOrUpdate): the body's `securityRules` replace every rule
   * the NSG has — an omitted list means none, as in Azure, which is why JIT never writes an NSG without first
   * reading it and sending `If-Match` with the etag it read. It is a long-running operation like a rule's: the NSG
   * reads `Updating` and refuses other writes (busy) for the operation latency, and its status URL says `InProgress`
   * until then — Network RP's NetworkSecurityGroups_CreateOrUpdate is `x-ms-long-running-operation` with
   * `final-state-via: azure-async-operation`
   * (specification/network/resource-manager/Microsoft.Network/stable/2025-05-01/networkSecurityGroup.json), and
   * Network RP runs one operation per NSG at a time. Creating NSGs is not modelled.
   */
  putNsg(
    subscriptionId: string,
    resourceGroup: string,
    name: string,
    body: unknown,
    ifMatch: string | undefined,
    apiVersion: string,
  ): { nsg: object; operation: OperationRecord } {
    this.requireResourceGroup(subscriptionId, resourceGroup);
    const nsg = this.nsgs.get(key(ids.nsg(subscriptionId, resourceGroup, name)));
    if (!nsg)
      throw new ArmError(400, 'UnsupportedByEmulator', 'The ARM emulator does not create NSGs by PUT.');
    // Network RP honours If-Match on a PUT (412 on a stale etag, https://github.com/kubernetes-sigs/cloud-provider-azure/issues/9729);
    // cloud-provider-azure sends the NSG's etag for this (https://github.com/kubernetes/kubernetes/issues/75582). An
    // older report that an NSG PUT ignored it (https://github.com/Azure/azure-rest-api-specs/issues/6789, 2019) put the
    // etag in the body and in an `ETag` header, not If-Match.
    if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== nsg.etag)
      throw armErrors.preconditionFailed(ifMatch, nsg.etag, nsg.id);
    this.assertNoOperationInProgress(nsg);
    const properties = (body as { properties?: Record<string, unknown> } | null)?.properties ?? {};
    const flush = properties['flushConnection'];
    if (flush !== undefined && typeof flush !== 'boolean') {
      throw armErrors.invalidRequestFormat(
        `Error converting value ${JSON.stringify(flush)} to type 'Boolean'. Path 'properties.flushConnection'.`,
      );
    }
    const raw = properties['securityRules'] ?? [];
    if (!Array.isArray(raw))
      throw armErrors.invalidRequestFormat("Path 'properties.securityRules' must be an array.");
    const next = new Map<string, RuleRecord>();
    for (const item of raw as Array<{ name?: unknown; properties?: unknown }>) {
      if (typeof item?.name !== 'string')
        throw armErrors.invalidRequestFormat('A security rule has no name.');
      validateRuleName(item.name);
      const ruleKey = key(item.name);
      const ruleName = nsg.rules.get(ruleKey)?.name ?? item.name;
      const definition = validateSecurityRule(ids.rule(nsg.id, ruleName), { properties: item.properties });
      for (const [otherKey, other] of next) {
        if (
          otherKey !== ruleKey &&
          other.definition.priority === definition.priority &&
          other.definition.direction === definition.direction
        )
          throw armErrors.securityRuleConflict(other.name, ruleName);
      }
      next.set(ruleKey, { name: ruleName, definition });
    }
    assertNsgLimits(
      nsg.id,
      [...nsg.rules.values()].map((r) => r.definition),
      [...next.values()].map((r) => r.definition),
    );
    const rulesChanged = JSON.stringify([...nsg.rules]) !== JSON.stringify([...next]);
    const enabling = flush === true && !nsg.flushConnection;
    nsg.rules = next;
    nsg.flushConnection = flush === true;
    if (enabling) nsg.flowReevaluations++;
    else if (rulesChanged) noteRuleChange(nsg);
    nsg.etag = newEtag();
    const operation = this.options.operations.create(nsg.subscriptionId, nsg.location, apiVersion);
    nsg.pending = {
      kind: 'nsg',
      ruleKey: '',
      previous: undefined,
      record: operation,
      failure: undefined,
      timer: undefined,
    };
    // Snapshot before scheduling: the response reports the NSG as Updating, as Azure's does.
    const json = nsgJson(nsg);
    this.schedule(nsg);
    return { nsg: json, operation };
  }

  /** Completes every operation in flight now; used on stop so no timer outlives the server. */
  settlePendingOperations(): void {
    for (const nsg of this.nsgs.values()) this.complete(nsg);
  }

  // ---------------------------------------------------------------------------------------------
  // Out-of-band edits and inspection for tests

  /**
   * Writes a rule at once, bypassing operations, as a person editing the NSG would. Validated like a
   * PUT; refused (409) while an operation on the NSG is in flight, as Azure would refuse the person.
   */
  putRuleDirect(nsgId: string, input: SecurityRuleInput): void {
    const nsg = this.requireNsgRecordById(nsgId);
    validateRuleName(input.name);
    this.assertNoOperationInProgress(nsg);
    const ruleKey = key(input.name);
    const name = nsg.rules.get(ruleKey)?.name ?? input.name;
    const definition = validateSecurityRule(ids.rule(nsg.id, name), { properties: input.properties });
    assertNoConflict(nsg, ruleKey, name, definition);
    assertLimitsAfter(nsg, ruleKey, definition);
    nsg.rules.set(ruleKey, { name, definition });
    noteRuleChange(nsg);
    nsg.etag = newEtag();
  }

  /** Deletes a rule at once; a missing rule is not an error (ARM's delete is idempotent). */
  deleteRuleDirect(nsgId: string, ruleName: string): void {
    const nsg = this.requireNsgRecordById(nsgId);
    if (!nsg.rules.has(key(ruleName))) return;
    this.assertNoOperationInProgress(nsg);
    nsg.rules.delete(key(ruleName));
    nsg.etag = newEtag();
    noteRuleChange(nsg);
  }

  nsgState(id: string): NsgState | undefined {
    const nsg = this.nsgs.get(key(id));
    return nsg && nsgState(nsg);
  }

  nsgStates(): NsgState[] {
    return [...this.nsgs.values()].map(nsgState);
  }
}

/** The NSG's rules as they would be with `definition` written under `ruleKey`, checked against the NSG limits. */
function assertLimitsAfter(nsg: NsgRecord, ruleKey: string, definition: RuleDefinition): void {
  const before = [...nsg.rules.values()].map((r) => r.definition);
  const after = [...nsg.rules.entries()].filter(([k]) => k !== ruleKey).map(([, r]) => r.definition);
  assertNsgLimits(nsg.id, before, [...after, definition]);
}

/** With flushConnection on, every rule change re-evaluates the NSG's flows (established sessions included). */
function noteRuleChange(nsg: NsgRecord): void {
  if (nsg.flushConnection) nsg.flowReevaluations++;
}

function assertNoConflict(nsg: NsgRecord, ruleKey: string, name: string, definition: RuleDefinition): void {
  for (const [otherKey, other] of nsg.rules) {
    if (
      otherKey !== ruleKey &&
      other.definition.priority === definition.priority &&
      other.definition.direction === definition.direction
    ) {
      throw armErrors.securityRuleConflict(other.name, name);
    }
  }
}

// -----------------------------------------------------------------------------------------------
// ARM JSON views

function ruleProvisioningState(nsg: NsgRecord, rule: RuleRecord): ProvisioningState {
  if (nsg.pending?.ruleKey === key(rule.name)) return nsg.pending.kind === 'put' ? 'Updating' : 'Deleting';
  return rule.failed ? 'Failed' : 'Succeeded';
}

function ruleJson(nsg: NsgRecord, rule: RuleRecord): ArmSecurityRule {
  return {
    id: ids.rule(nsg.id, rule.name),
    name: rule.name,
    // Network RP stamps the parent's etag on every child; a change to one rule renews them all.
    etag: nsg.etag,
    type: 'Microsoft.Network/networkSecurityGroups/securityRules',
    properties: {
      ...structuredClone(rule.definition),
      provisioningState: ruleProvisioningState(nsg, rule),
    },
  };
}

/** The six rules Azure puts in every NSG (priorities 65000-65500, not editable). */
const DEFAULT_RULES = [
  {
    name: 'AllowVnetInBound',
    direction: 'Inbound',
    priority: 65000,
    access: 'Allow',
    from: 'VirtualNetwork',
    to: 'VirtualNetwork',
    description: 'Allow inbound traffic from all VMs in VNET',
  },
  {
    name: 'AllowAzureLoadBalancerInBound',
    direction: 'Inbound',
    priority: 65001,
    access: 'Allow',
    from: 'AzureLoadBalancer',
    to: '*',
    description: 'Allow inbound traffic from azure load balancer',
  },
  {
    name: 'DenyAllInBound',
    direction: 'Inbound',
    priority: 65500,
    access: 'Deny',
    from: '*',
    to: '*',
    description: 'Deny all inbound traffic',
  },
  {
    name: 'AllowVnetOutBound',
    direction: 'Outbound',
    priority: 65000,
    access: 'Allow',
    from: 'VirtualNetwork',
    to: 'VirtualNetwork',
    description: 'Allow outbound traffic from all VMs to all VMs in VNET',
  },
  {
    name: 'AllowInternetOutBound',
    direction: 'Outbound',
    priority: 65001,
    access: 'Allow',
    from: '*',
    to: 'Internet',
    description: 'Allow outbound traffic from all VMs to Internet',
  },
  {
    name: 'DenyAllOutBound',
    direction: 'Outbound',
    priority: 65500,
    access: 'Deny',
    from: '*',
    to: '*',
    description: 'Deny all outbound traffic',
  },
] as const;

function defaultRulesJson(nsg: NsgRecord): ArmSecurityRule[] {
  return DEFAULT_RULES.map((rule) => ({
    id: ids.defaultRule(nsg.id, rule.name),
    name: rule.name,
    etag: nsg.etag,
    type: 'Microsoft.Network/networkSecurityGroups/defaultSecurityRules',
    properties: {
      description: rule.description,
      protocol: '*',
      sourcePortRange: '*',
      destinationPortRange: '*',
      sourceAddressPrefix: rule.from,
      destinationAddressPrefix: rule.to,
      access: rule.access,
      priority: rule.priority,
      direction: rule.direction,
      sourcePortRanges: [],
      destinationPortRanges: [],
      sourceAddressPrefixes: [],
      destinationAddressPrefixes: [],
      provisioningState: 'Succeeded',
    },
  }));
}

function nsgState(nsg: NsgRecord): NsgState {
  return {
    id: nsg.id,
    name: nsg.name,
    location: nsg.location,
    etag: nsg.etag,
    provisioningState: nsg.pending ? 'Updating' : 'Succeeded',
    securityRules: [...nsg.rules.values()].map((rule) => ruleJson(nsg, rule)),
    defaultSecurityRules: defaultRulesJson(nsg),
    networkInterfaces: [...nsg.nicIds],
    subnets: [...nsg.subnetIds],
    flushConnection: nsg.flushConnection,
    flowReevaluations: nsg.flowReevaluations,
  };
}

function nsgJson(nsg: NsgRecord): object {
  const state = nsgState(nsg);
  return {
    id: state.id,
    name: state.name,
    type: `${NETWORK}/networkSecurityGroups`,
    location: state.location,
    etag: state.etag,
    properties: {
      provisioningState: state.provisioningState,
      resourceGuid: nsg.resourceGuid,
      flushConnection: nsg.flushConnection,
      securityRules: state.securityRules,
      defaultSecurityRules: state.defaultSecurityRules,
      networkInterfaces: state.networkInterfaces.map((id) => ({ id })),
      subnets: state.subnets.map((id) => ({ id })),
    },
  };
}

function vmJson(vm: VmRecord): object {
  const osDiskName = `${vm.name}_OsDisk_1`;
  return {
    id: vm.id,
    name: vm.name,
    type: `${COMPUTE}/virtualMachines`,
    location: vm.location,
    properties: {
      vmId: vm.vmId,
      hardwareProfile: { vmSize: vm.vmSize },
      storageProfile: {
        osDisk: {
          osType: vm.osType,
          name: osDiskName,
          createOption: 'FromImage',
          caching: 'ReadWrite',
          managedDisk: {
            storageAccountType: 'Premium_LRS',
            id: resourceId(vm.subscriptionId, vm.resourceGroup, COMPUTE, 'disks', osDiskName),
          },
          deleteOption: 'Delete',
          diskSizeGB: vm.osType === 'Windows' ? 127 : 30,
        },
        dataDisks: [],
      },
      osProfile: { computerName: vm.name, adminUsername: 'azureuser' },
      networkProfile: {
        networkInterfaces: vm.nicIds.map((id, index) => ({ id, properties: { primary: index === 0 } })),
      },
      provisioningState: 'Succeeded',
      timeCreated: vm.timeCreated,
    },
  };
}

function nicJson(nic: NicRecord): object {
  const properties: Record<string, unknown> = {
    provisioningState: 'Succeeded',
    resourceGuid: nic.resourceGuid,
    ipConfigurations: nic.ipConfigurations.map((ipConfiguration) => ({
      id: ipConfiguration.id,
      name: ipConfiguration.name,
      etag: nic.etag,
      type: `${NETWORK}/networkInterfaces/ipConfigurations`,
      properties: {
        provisioningState: 'Succeeded',
        privateIPAddress: ipConfiguration.privateIpAddress,
        privateIPAllocationMethod: 'Dynamic',
        privateIPAddressVersion: ipConfiguration.version,
        primary: ipConfiguration.primary,
        subnet: { id: ipConfiguration.subnetId },
      },
    })),
    dnsSettings: { dnsServers: [], appliedDnsServers: [] },
    macAddress: nic.macAddress,
    enableAcceleratedNetworking: false,
    enableIPForwarding: false,
    primary: nic.primary,
    virtualMachine: { id: nic.virtualMachineId },
    nicType: 'Standard',
  };
  if (nic.nsgId !== undefined) properties['networkSecurityGroup'] = { id: nic.nsgId };
  return {
    id: nic.id,
    name: nic.name,
    type: `${NETWORK}/networkInterfaces`,
    location: nic.location,
    etag: nic.etag,
    properties,
  };
}

function subnetJson(subnet: SubnetRecord): object {
  const properties: Record<string, unknown> = {
    provisioningState: 'Succeeded',
    ipConfigurations: subnet.ipConfigurationIds.map((id) => ({ id })),
    privateEndpointNetworkPolicies: 'Disabled',
    privateLinkServiceNetworkPolicies: 'Enabled',
  };
  // ARM uses the singular field for a single-stack subnet and the list for dual stack.
  if (subnet.addressPrefixes.length === 1) properties['addressPrefix'] = subnet.addressPrefixes[0];
  else properties['addressPrefixes'] = [...subnet.addressPrefixes];
  if (subnet.nsgId !== undefined) properties['networkSecurityGroup'] = { id: subnet.nsgId };
  return {
    id: subnet.id,
    name: subnet.name,
    etag: subnet.etag,
    type: `${NETWORK}/virtualNetworks/subnets`,
    properties,
  };
}

function vnetJson(vnet: VnetRecord): object {
  return {
    id: vnet.id,
    name: vnet.name,
    type: `${NETWORK}/virtualNetworks`,
    location: vnet.location,
    etag: vnet.etag,
    properties: {
      provisioningState: 'Succeeded',
      resourceGuid: vnet.resourceGuid,
      addressSpace: { addressPrefixes: [...vnet.addressPrefixes] },
      subnets: [...vnet.subnets.values()].map(subnetJson),
      virtualNetworkPeerings: [],
      enableDdosProtection: false,
    },
  };
}

// -----------------------------------------------------------------------------------------------
// Small helpers

function newEtag(): string {
  return `W/"${randomUUID()}"`;
}

function randomMac(): string {
  const bytes = [0x00, 0x0d, 0x3a, ...Array.from({ length: 3 }, () => Math.floor(Math.random() * 256))];
  return bytes.map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join('-');
}

function familyOfPrefix(prefix: string): 'IPv4' | 'IPv6' {
  return prefix.includes(':') ? 'IPv6' : 'IPv4';
}

/** The prefix if it is of the family; a dual-stack spec names only one of its prefixes. */
function ofFamily(prefix: string | undefined, family: 'IPv4' | 'IPv6'): string | undefined {
  return prefix !== undefined && familyOfPrefix(prefix) === family ? prefix : undefined;
}

function defaultPrefix(address: string, length: number): string {
  const cidr = `${address}/${length}`;
  const network =
    addressFamily(address) === 'IPv6'
      ? ipaddr.IPv6.networkAddressFromCIDR(cidr).toString()
      : ipaddr.IPv4.networkAddressFromCIDR(cidr).toString();
  return `${network}/${length}`;
}

function inPrefix(address: string, prefix: string): boolean {
  try {
    const parsed = ipaddr.parse(address);
    const range = ipaddr.parseCIDR(prefix);
    return parsed.kind() === range[0].kind() && parsed.match(range);
  } catch {
    return false;
  }
}
