/**
 * The ARM errors the emulator answers with. Codes and message shapes follow what Azure returns
 * (as seen in public error reports), so client code that branches on `RestError.code` or logs the
 * message behaves as it would against Azure.
 */

/** An ARM error: HTTP status plus the `{ error: { code, message } }` body. */
export class ArmError extends Error {
  override readonly name = 'ArmError';
  readonly headers: Readonly<Record<string, string>>;
  private readonly details: ReadonlyArray<{ code: string; message: string }> | undefined;

  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options: ArmErrorOptions = {},
  ) {
    super(message);
    this.headers = options.headers ?? {};
    // Resource-provider errors carry `details`; errors raised by the ARM front door (routing,
    // authentication, resource groups) do not.
    this.details = (options.fromResourceProvider ?? true) ? (options.details ?? []) : undefined;
  }

  toBody(): ArmErrorBody {
    const error: ArmErrorBody['error'] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = [...this.details];
    return { error };
  }
}

export interface ArmErrorOptions {
  /** Default true. False for errors Azure raises before the request reaches a resource provider. */
  fromResourceProvider?: boolean;
  headers?: Record<string, string>;
  details?: Array<{ code: string; message: string }>;
}

export interface ArmErrorBody {
  error: { code: string; message: string; details?: unknown[] };
}

const FRONT_DOOR = { fromResourceProvider: false } as const;

export const armErrors = {
  authorizationMissing: () =>
    new ArmError(
      401,
      'AuthenticationFailed',
      "Authentication failed. The 'Authorization' header is missing.",
      {
        ...FRONT_DOOR,
        headers: {
          'WWW-Authenticate':
            'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", ' +
            'error_description="The authentication failed because of missing \'Authorization\' header."',
        },
      },
    ),
  authorizationMalformed: () =>
    new ArmError(
      401,
      'AuthenticationFailedInvalidHeader',
      "Authentication failed. The 'Authorization' header is provided in an invalid format.",
      FRONT_DOOR,
    ),
  missingApiVersion: () =>
    new ArmError(
      400,
      'MissingApiVersionParameter',
      'The api-version query parameter (?api-version=) is required for all requests.',
      FRONT_DOOR,
    ),
  subscriptionNotFound: (subscriptionId: string) =>
    new ArmError(
      404,
      'SubscriptionNotFound',
      `The subscription '${subscriptionId}' could not be found.`,
      FRONT_DOOR,
    ),
  resourceGroupNotFound: (resourceGroup: string) =>
    new ArmError(
      404,
      'ResourceGroupNotFound',
      `Resource group '${resourceGroup}' could not be found.`,
      FRONT_DOOR,
    ),
  /** A top-level resource (VM, NIC, VNet, NSG) that does not exist. */
  resourceNotFound: (type: string, name: string, resourceGroup: string) =>
    new ArmError(
      404,
      'ResourceNotFound',
      `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found. ` +
        'For more details please go to https://aka.ms/ARMResourceNotFoundFix',
      FRONT_DOOR,
    ),
  /** A nested resource (subnet, security rule) under an existing parent. */
  nestedResourceNotFound: (id: string) => new ArmError(404, 'NotFound', `Resource ${id} not found.`),
  parentResourceNotFound: (parentName: string) =>
    new ArmError(
      404,
      'ParentResourceNotFound',
      `Can not perform requested operation on nested resource. Parent resource '${parentName}' not found.`,
    ),
  operationNotFound: (operationId: string) =>
    new ArmError(404, 'NotFound', `Operation ${operationId} not found.`),
  unsupportedRoute: (method: string, path: string) =>
    new ArmError(
      404,
      'NotFound',
      `The ARM emulator does not serve ${method} ${path}. See dev/arm/routes.ts for what it serves.`,
      FRONT_DOOR,
    ),
  methodNotAllowed: (method: string) =>
    new ArmError(
      405,
      'MethodNotAllowed',
      `The requested resource does not support http method '${method}'.`,
      FRONT_DOOR,
    ),
  invalidRequestFormat: (detail: string) =>
    new ArmError(400, 'InvalidRequestFormat', 'Cannot parse the request.', {
      details: [{ code: 'InvalidJson', message: detail }],
    }),
  /**
   * Wording as Network RP sends it, quoted in full in https://github.com/rh-mobb/documentation/pull/204 (a name with a
   * space) and by the Network team in https://github.com/MicrosoftDocs/azure-docs/pull/105345, which put the same rule
   * for security rule names on https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules.
   */
  invalidResourceName: (name: string) =>
    new ArmError(
      400,
      'InvalidResourceName',
      `Resource name ${name} is invalid. The name can be up to 80 characters long. It must begin with a word ` +
        "character, and it must end with a word character or with '_'. The name may contain word characters or " +
        "'.', '-', '_'.",
    ),
  /**
   * A write while another operation holds the resource. Code and wording as quoted in
   * https://github.com/microsoft/AzureTRE/issues/2222 (and, for an NSG's subnet, Azure/sap-automation#1052); the uri
   * is the running operation's Azure-AsyncOperation address.
   */
  anotherOperationInProgress: (operationUrl: string) =>
    new ArmError(
      409,
      'AnotherOperationInProgress',
      'Another operation on this or dependent resource is in progress. To retrieve status of the operation use ' +
        `uri: ${operationUrl}.`,
    ),
  /**
   * Network RP's other answer to a write while an operation holds the resource: "the network resource provider
   * returns 429 with the RetryableErrorDueToAnotherOperation error code when the target resource is locked by
   * another operation" (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling,
   * "Error code"). Body as seen in Azure/azure-sdk-for-python#556 (`RetryableError`, "A retryable error occured.",
   * detail "Operation PutSecurityRuleOperation (<id>) is updating resource <id>…"); the message is spelled
   * "occurred" in later reports (hashicorp/terraform-provider-azurerm#25417). `Retry-After` as Network RP's 429s
   * carry it (Azure/azure-libraries-for-net#1001), with the value it gives running operations.
   */
  retryableDueToAnotherOperation: (
    operationName: string,
    operationId: string,
    resourceId: string,
    retryAfterInSeconds: number,
  ) =>
    new ArmError(429, 'RetryableError', 'A retryable error occurred.', {
      headers: { 'Retry-After': String(retryAfterInSeconds) },
      details: [
        {
          code: 'RetryableErrorDueToAnotherOperation',
          message: `Operation ${operationName} (${operationId}) is updating resource ${resourceId}.`,
        },
      ],
    }),
  securityRuleParameterMissing: (parameter: string, ruleId: string) =>
    new ArmError(
      400,
      'SecurityRuleParameterMissing',
      `Required security rule parameter ${parameter} is missing for security rule with Id: ${ruleId}.`,
    ),
  securityRuleParametersMissing: (alternatives: string, ruleId: string) =>
    new ArmError(
      400,
      'SecurityRuleParametersMissing',
      `Required security rule parameters are missing for security rule with Id: ${ruleId}. ` +
        `Security rule must specify ${alternatives}.`,
    ),
  /** Code and wording as quoted in https://github.com/pulumi/pulumi-azure-native/issues/2221 (priority 0). */
  securityRuleInvalidPriority: (provided: unknown) =>
    new ArmError(
      400,
      'SecurityRuleInvalidPriority',
      `Security rule has invalid Priority. Value provided: ${String(provided)} Allowed range 100-4096.`,
    ),
  securityRuleInvalidPortRange: (provided: string) =>
    new ArmError(
      400,
      'SecurityRuleInvalidPortRange',
      `Security rule has invalid Port range. Value provided: ${provided}. Value should be an integer OR integer ` +
        "range with '-' delimiter. Valid range 0-65535.",
    ),
  securityRuleInvalidAddressPrefix: (provided: string) =>
    new ArmError(
      400,
      'SecurityRuleInvalidAddressPrefix',
      `Security rule has invalid Address prefix. Value provided: ${provided}.`,
    ),
  securityRuleUnsupportedPrefixValue: (parameter: string, ruleId: string, provided: string) =>
    new ArmError(
      400,
      'SecurityRuleParameterContainsUnsupportedValue',
      `Security rule parameter ${parameter} for rule with Id ${ruleId} cannot specify existing VIRTUALNETWORK, ` +
        `INTERNET, AZURELOADBALANCER, '*' or system tags. Unsupported value used: ${provided}.`,
    ),
  mixedAddressFamilies: (ruleId: string) =>
    new ArmError(
      400,
      'ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies',
      `Resource ${ruleId} contains IP addresses or prefixes that belong to different address families. ` +
        'All IP addresses or prefixes in the resource should belong to the same address family.',
    ),
  /** Azure names the rule already holding the slot first, then the rule being written. */
  securityRuleConflict: (existingRule: string, newRule: string) =>
    new ArmError(
      400,
      'SecurityRuleConflict',
      `Security rule ${existingRule} conflicts with rule ${newRule}. Rules cannot have the same Priority and ` +
        'Direction. To learn more, see aka.ms/nsgrules.',
    ),
  /**
   * A write or delete under a management lock. ARM answers before the resource provider sees the request, naming
   * the scope asked for and the locked scope(s). Wording as Azure sends it (seen in
   * https://github.com/hashicorp/terraform-provider-azurerm/issues/17478 and
   * https://github.com/Azure/apiops/issues/606); the lock semantics are
   * https://learn.microsoft.com/azure/azure-resource-manager/management/lock-resources.
   */
  scopeLocked: (scope: string, operation: 'write' | 'delete', lockedScopes: string[]) =>
    new ArmError(
      409,
      'ScopeLocked',
      `The scope '${scope}' cannot perform ${operation} operation because following scope(s) are locked: ` +
        `${lockedScopes.map((s) => `'${s}'`).join(', ')}. Please remove the lock and try again.`,
      FRONT_DOOR,
    ),
  /**
   * The caller's role assignments do not grant the action at the scope. Wording as ARM sends it, e.g.
   * https://github.com/Azure/CloudShell/issues/561 and https://github.com/ansible-collections/azure/issues/1068:
   * the client is the application (client) id for a service principal, the object id its principal id.
   */
  authorizationFailed: (clientId: string, objectId: string, action: string, scope: string) =>
    new ArmError(
      403,
      'AuthorizationFailed',
      `The client '${clientId}' with object id '${objectId}' does not have authorization to perform action ` +
        `'${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh ` +
        'your credentials.',
      FRONT_DOOR,
    ),
  /** A bearer token that looks like a JWT but cannot be read is refused as ARM refuses a bad token. */
  invalidAuthenticationToken: () =>
    new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.', FRONT_DOOR),
  /**
   * 1,000 rules per NSG ("NSG rules per NSG", https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#networking-limits).
   * Code and wording as Network RP answered in https://github.com/Azure/azure-rest-api-specs/issues/3003.
   */
  securityRuleCountLimitReached: (limit: number) =>
    new ArmError(
      400,
      'SecurityRuleCountLimitReached',
      `A security group cannot have more than ${limit} security rules.`,
    ),
  /**
   * 4,000 "IP addresses and ranges specified for source or destination in a security group (the limit applies
   * separately to source and destination)", same limits page. Code and wording as Network RP answered in
   * https://github.com/kubernetes-sigs/cloud-provider-azure/issues/2725 ("… has 4094 DestinationAddressPrefixes. A
   * security group cannot have more than 4000 DestinationAddressPrefixes as per the limit
   * MaxSecurityRuleAddressesOrPortsPerSecurityGroup."). The limit's name says ports count toward a like limit too;
   * no public report shows that answer, so the emulator counts addresses only.
   */
  securityRuleAddressPrefixLimitReached: (
    nsgId: string,
    side: 'source' | 'destination',
    limit: number,
    count: number,
  ) => {
    const what = side === 'source' ? 'SourceAddressPrefixes' : 'DestinationAddressPrefixes';
    return new ArmError(
      400,
      'SecurityRuleAddressesOrPortsPerSecurityGroupLimitReached',
      `Network security group ${nsgId} has ${count} ${what}. A security group cannot have more than ${limit} ` +
        `${what} as per the limit MaxSecurityRuleAddressesOrPortsPerSecurityGroup.`,
    );
  },
  /**
   * Descriptions are limited to 140 characters
   * (https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#security-rules, added in
   * https://github.com/MicrosoftDocs/azure-docs/pull/53699; Defender's over-long descriptions fail on it:
   * https://github.com/MicrosoftDocs/azure-docs/issues/112218). No public source quotes Network RP's answer (code or
   * wording): both are the emulator's, shaped like the other SecurityRule* validation errors; a client should key on
   * the 400, not the code.
   */
  securityRuleDescriptionTooLong: (ruleId: string, length: number) =>
    new ArmError(
      400,
      'SecurityRuleInvalidDescription',
      `Security rule ${ruleId} has a description of ${length} characters. The description can be up to 140 characters long.`,
    ),
  /**
   * A conditional write whose If-Match no longer matches the resource's etag (ARM's optimistic concurrency). Body as
   * Network RP sends it, quoted in https://github.com/kubernetes-sigs/cloud-provider-azure/issues/9729 (a public IP,
   * same resource provider): `PreconditionFailed` "Precondition failed." with detail `PreconditionFailedEtagMismatch`
   * "Etag provided in if-match header … does not match etag … of resource <id>"; the detail's end past the id is not
   * in the report, so it stops there.
   */
  preconditionFailed: (ifMatch: string, etag: string, resourceId: string) =>
    new ArmError(412, 'PreconditionFailed', 'Precondition failed.', {
      details: [
        {
          code: 'PreconditionFailedEtagMismatch',
          message: `Etag provided in if-match header ${ifMatch} does not match etag ${etag} of resource ${resourceId}.`,
        },
      ],
    }),
  /** A lock without a level ARM knows (`level` is required in the 2020-05-01 locks spec). */
  invalidLockLevel: (value: unknown) =>
    new ArmError(
      400,
      'LockLevelInvalid',
      `The lock level '${String(value)}' is invalid. Valid values are 'CanNotDelete' and 'ReadOnly'.`,
      FRONT_DOOR,
    ),
} as const;
