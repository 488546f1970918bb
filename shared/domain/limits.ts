/**
 * Azure's per-NSG limits JIT plans around ("Networking limits - Azure Resource Manager",
 * https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#networking-limits).
 */

/** NSG rules per NSG. ARM refuses the next one with `SecurityRuleCountLimitReached`. */
export const MAX_RULES_PER_NSG = 1000;
