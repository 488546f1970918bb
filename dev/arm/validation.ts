/**
 * Validation of a security rule PUT, in the order and with the error codes Azure uses, so that a
 * malformed rule fails here exactly as it would fail in Azure rather than silently "working".
 */
import ipaddr from 'ipaddr.js';

import { ArmError, armErrors } from './errors';
import type { RuleAccess, RuleDirection, RuleProtocol, SecurityRuleProperties } from './types';

/** A validated rule: the stored form, without the provisioning state. */
export type RuleDefinition = Omit<SecurityRuleProperties, 'provisioningState'>;

const PROTOCOLS: readonly RuleProtocol[] = ['Tcp', 'Udp', 'Icmp', 'Esp', 'Ah', '*'];
const ACCESSES: readonly RuleAccess[] = ['Allow', 'Deny'];
const DIRECTIONS: readonly RuleDirection[] = ['Inbound', 'Outbound'];

/**
 * Service tags accepted as a single source/destination prefix. Azure knows many more; these are the
 * ones an operator plausibly writes, and anything else fails as it does in Azure for a typo such as
 * `any` or a subnet name.
 */
const SERVICE_TAGS = [
  'VirtualNetwork',
  'Internet',
  'AzureLoadBalancer',
  'AzureCloud',
  'AzureActiveDirectory',
  'AzureMonitor',
  'AzureTrafficManager',
  'GatewayManager',
  'Storage',
  'Sql',
  'AzureKeyVault',
  'EventHub',
  'ServiceBus',
  'AppService',
  'ApiManagement',
  'AzureContainerRegistry',
  'AzureCosmosDB',
  'AzureFrontDoor.Backend',
  'AzureFrontDoor.Frontend',
];

/**
 * "The name can be up to 80 characters long. It must begin with a word character, and it must end with a word character
 * or with '_'. The name may contain word characters or '.', '-', '_'."
 * (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules, and
 * https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftnetwork for
 * networkSecurityGroups/securityRules); refused with InvalidResourceName (errors.ts).
 */
const RULE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$/;

export function validateRuleName(name: string): void {
  if (!RULE_NAME.test(name)) throw armErrors.invalidResourceName(name);
}

/**
 * Validates a PUT body for the rule with id `ruleId` and returns the definition to store.
 * @throws ArmError (400) describing the first problem found.
 */
export function validateSecurityRule(ruleId: string, body: unknown): RuleDefinition {
  if (!isObject(body)) throw armErrors.invalidRequestFormat('The request body must be a JSON object.');
  const raw = body['properties'] ?? {};
  if (!isObject(raw)) throw armErrors.invalidRequestFormat("Path 'properties' must be an object.");

  const description = readString(raw, 'description');
  const protocol = readEnum(raw, 'protocol', PROTOCOLS);
  const access = readEnum(raw, 'access', ACCESSES);
  const direction = readEnum(raw, 'direction', DIRECTIONS);
  const priority = readInteger(raw, 'priority');
  const sourcePortRange = nonEmpty(readString(raw, 'sourcePortRange'));
  const sourcePortRanges = readStringArray(raw, 'sourcePortRanges');
  const destinationPortRange = nonEmpty(readString(raw, 'destinationPortRange'));
  const destinationPortRanges = readStringArray(raw, 'destinationPortRanges');
  const sourceAddressPrefix = nonEmpty(readString(raw, 'sourceAddressPrefix'));
  const sourceAddressPrefixes = readStringArray(raw, 'sourceAddressPrefixes');
  const destinationAddressPrefix = nonEmpty(readString(raw, 'destinationAddressPrefix'));
  const destinationAddressPrefixes = readStringArray(raw, 'destinationAddressPrefixes');
  for (const asgs of ['sourceApplicationSecurityGroups', 'destinationApplicationSecurityGroups']) {
    const value = raw[asgs];
    if (Array.isArray(value) && value.length > 0) {
      throw new ArmError(400, 'UnsupportedByEmulator', `The ARM emulator does not model ${asgs}.`);
    }
  }

  if (protocol === undefined) throw armErrors.securityRuleParameterMissing('Protocol', ruleId);
  if (sourcePortRange === undefined && sourcePortRanges.length === 0) {
    throw armErrors.securityRuleParameterMissing('SourcePortRange', ruleId);
  }
  if (destinationPortRange === undefined && destinationPortRanges.length === 0) {
    throw armErrors.securityRuleParameterMissing('DestinationPortRange', ruleId);
  }
  if (sourceAddressPrefix === undefined && sourceAddressPrefixes.length === 0) {
    throw armErrors.securityRuleParametersMissing(
      'SourceAddressPrefixes, SourceAddressPrefix, or SourceApplicationSecurityGroups',
      ruleId,
    );
  }
  if (destinationAddressPrefix === undefined && destinationAddressPrefixes.length === 0) {
    throw armErrors.securityRuleParametersMissing(
      'DestinationAddressPrefixes, DestinationAddressPrefix, or DestinationApplicationSecurityGroups',
      ruleId,
    );
  }
  if (access === undefined) throw armErrors.securityRuleParameterMissing('Access', ruleId);
  if (priority === undefined) throw armErrors.securityRuleParameterMissing('Priority', ruleId);
  if (direction === undefined) throw armErrors.securityRuleParameterMissing('Direction', ruleId);
  // "a number between 100 and 4096" (network-security-groups-overview#security-rules); the answer to 0 is quoted in
  // https://github.com/pulumi/pulumi-azure-native/issues/2221.
  if (priority < 100 || priority > 4096) throw armErrors.securityRuleInvalidPriority(priority);
  // Up to 140 characters (network-security-groups-overview#security-rules); Azure counts UTF-16 code units.
  if (description !== undefined && description.length > 140) {
    throw armErrors.securityRuleDescriptionTooLong(ruleId, description.length);
  }

  for (const range of [
    sourcePortRange,
    ...sourcePortRanges,
    destinationPortRange,
    ...destinationPortRanges,
  ]) {
    if (range !== undefined && !isPortRange(range)) throw armErrors.securityRuleInvalidPortRange(range);
  }

  const families = new Set<Family>();
  const single = (value: string | undefined): void => {
    if (value === undefined || value === '*' || isServiceTag(value)) return;
    const family = addressFamily(value);
    if (family === undefined) throw armErrors.securityRuleInvalidAddressPrefix(value);
    families.add(family);
  };
  const list = (parameter: string, values: string[]): void => {
    for (const value of values) {
      if (value === '*' || isServiceTag(value)) {
        throw armErrors.securityRuleUnsupportedPrefixValue(parameter, ruleId, value);
      }
      const family = addressFamily(value);
      if (family === undefined) throw armErrors.securityRuleInvalidAddressPrefix(value);
      families.add(family);
    }
  };
  single(sourceAddressPrefix);
  single(destinationAddressPrefix);
  list('SourceAddressPrefixes', sourceAddressPrefixes);
  list('DestinationAddressPrefixes', destinationAddressPrefixes);
  if (families.size > 1) throw armErrors.mixedAddressFamilies(ruleId);

  const definition: RuleDefinition = {
    protocol,
    sourcePortRanges,
    destinationPortRanges,
    sourceAddressPrefixes,
    destinationAddressPrefixes,
    access,
    priority,
    direction,
  };
  if (description !== undefined) definition.description = description;
  if (sourcePortRange !== undefined) definition.sourcePortRange = sourcePortRange;
  if (destinationPortRange !== undefined) definition.destinationPortRange = destinationPortRange;
  if (sourceAddressPrefix !== undefined) definition.sourceAddressPrefix = sourceAddressPrefix;
  if (destinationAddressPrefix !== undefined) definition.destinationAddressPrefix = destinationAddressPrefix;
  return definition;
}

type Family = 'IPv4' | 'IPv6';

/**
 * The family of an address or CIDR prefix, or undefined when it is not one Azure accepts. Azure
 * refuses a prefix with host bits set (`20.20.20.20/16`), a classic source of broken JIT rules.
 */
export function addressFamily(value: string): Family | undefined {
  const [address, length, ...rest] = value.split('/');
  if (address === undefined || rest.length > 0) return undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) {
    if (length === undefined) return 'IPv4';
    if (!ipaddr.IPv4.isValidCIDRFourPartDecimal(value)) return undefined;
    return ipaddr.IPv4.networkAddressFromCIDR(value).toString() === ipaddr.IPv4.parse(address).toString()
      ? 'IPv4'
      : undefined;
  }
  if (ipaddr.IPv6.isValid(address) && !address.includes('%')) {
    if (length === undefined) return 'IPv6';
    if (!ipaddr.IPv6.isValidCIDR(value)) return undefined;
    return ipaddr.IPv6.networkAddressFromCIDR(value).toNormalizedString() ===
      ipaddr.IPv6.parse(address).toNormalizedString()
      ? 'IPv6'
      : undefined;
  }
  return undefined;
}

function isServiceTag(value: string): boolean {
  const lower = value.toLowerCase();
  return SERVICE_TAGS.some((tag) => {
    const t = tag.toLowerCase();
    // Regional variants such as Storage.WestEurope.
    return lower === t || (lower.startsWith(`${t}.`) && /^[a-z0-9]+$/.test(lower.slice(t.length + 1)));
  });
}

function isPortRange(value: string): boolean {
  if (value === '*') return true;
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value);
  if (!match) return false;
  const low = Number(match[1]);
  const high = match[2] === undefined ? low : Number(match[2]);
  return low <= high && high <= 65535;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

// Azure's front end deserialises with Json.NET: a value of the wrong JSON type or an unknown enum
// member fails the whole request as InvalidRequestFormat before any rule-level check runs.
function readString(props: Record<string, unknown>, name: string): string | undefined {
  const value = props[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw conversionError(value, 'String', name);
  return value;
}

function readStringArray(props: Record<string, unknown>, name: string): string[] {
  const value = props[name];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw conversionError(value, 'List`1[System.String]', name);
  }
  return [...value];
}

function readInteger(props: Record<string, unknown>, name: string): number | undefined {
  const value = props[name];
  if (value === undefined || value === null) return undefined;
  // Json.NET also converts a string holding an integer ("100").
  const number = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number)) throw conversionError(value, 'Int32', name);
  return number;
}

function readEnum<T extends string>(
  props: Record<string, unknown>,
  name: string,
  members: readonly T[],
): T | undefined {
  const value = readString(props, name);
  if (value === undefined) return undefined;
  // Json.NET matches enum names case-insensitively; ARM answers with the canonical spelling.
  const member = members.find((m) => m.toLowerCase() === value.toLowerCase());
  if (member === undefined) throw conversionError(value, name, name);
  return member;
}

function conversionError(value: unknown, type: string, name: string): ArmError {
  return armErrors.invalidRequestFormat(
    `Error converting value ${JSON.stringify(value)} to type '${type}'. Path 'properties.${name}'.`,
  );
}
