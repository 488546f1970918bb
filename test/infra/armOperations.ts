/**
 * Which Azure Resource Manager operations the code performs, and which RBAC actions each one needs.
 *
 * The operations are found with the TypeScript type checker, not by matching text: any call whose method is
 * declared by an `@azure/arm-*` package counts, however the client was obtained or stored. A call the map below
 * does not know fails the infra tests, so a new SDK call cannot ship without someone deciding its RBAC actions
 * and adding them to the custom role in infra/modules/role-assignments.bicep.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { REPO_ROOT } from './bicepModel';

/**
 * `<SDK operations interface>.<method>` → the actions ARM checks for it. Sources: the REST path of each operation
 * in the SDK, and Microsoft's resource provider operations list for Microsoft.Compute and Microsoft.Network.
 * Long-running PUTs and DELETEs of network resources are polled through
 * `/subscriptions/{id}/providers/Microsoft.Network/locations/{region}/operations/{id}` (Azure-AsyncOperation); a
 * DELETE's final result comes from `.../locations/{region}/operationResults/{id}` (Location, the SDK's
 * `resourceLocationConfig: "location"`), while a PUT ends with a GET of the rule itself.
 */
export const ARM_OPERATION_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  // @azure/arm-compute 24 names its operations interfaces `<Group>Operations`.
  'VirtualMachinesOperations.get': ['Microsoft.Compute/virtualMachines/read'],
  // The VMs in a policy's scope (a resource group, or a whole subscription).
  'VirtualMachinesOperations.list': ['Microsoft.Compute/virtualMachines/read'],
  'VirtualMachinesOperations.listAll': ['Microsoft.Compute/virtualMachines/read'],
  'NetworkInterfaces.get': ['Microsoft.Network/networkInterfaces/read'],
  // The reconciler reads a policy scope's paths from listings (NICs and virtual networks with their subnets).
  'NetworkInterfaces.list': ['Microsoft.Network/networkInterfaces/read'],
  'NetworkInterfaces.listAll': ['Microsoft.Network/networkInterfaces/read'],
  'VirtualNetworks.list': ['Microsoft.Network/virtualNetworks/read'],
  'VirtualNetworks.listAll': ['Microsoft.Network/virtualNetworks/read'],
  // Walks the pages of one of the listings above (the SDK packages declare the pager): no action of its own.
  'PagedAsyncIterableIterator.byPage': [],
  'Subnets.get': ['Microsoft.Network/virtualNetworks/subnets/read'],
  'SecurityRules.get': ['Microsoft.Network/networkSecurityGroups/securityRules/read'],
  'SecurityRules.list': ['Microsoft.Network/networkSecurityGroups/securityRules/read'],
  'SecurityRules.beginCreateOrUpdate': [
    'Microsoft.Network/networkSecurityGroups/securityRules/write',
    'Microsoft.Network/locations/operations/read',
    'Microsoft.Network/networkSecurityGroups/securityRules/read',
  ],
  'SecurityRules.beginCreateOrUpdateAndWait': [
    'Microsoft.Network/networkSecurityGroups/securityRules/write',
    'Microsoft.Network/locations/operations/read',
    'Microsoft.Network/networkSecurityGroups/securityRules/read',
  ],
  'SecurityRules.beginDelete': [
    'Microsoft.Network/networkSecurityGroups/securityRules/delete',
    'Microsoft.Network/locations/operations/read',
    'Microsoft.Network/locations/operationResults/read',
  ],
  'SecurityRules.beginDeleteAndWait': [
    'Microsoft.Network/networkSecurityGroups/securityRules/delete',
    'Microsoft.Network/locations/operations/read',
    'Microsoft.Network/locations/operationResults/read',
  ],
  // @azure/arm-locks 2.1 (api 2020-05-01): the locks at an NSG and above it (`$filter=atScope()`).
  'ManagementLocks.listByScope': ['Microsoft.Authorization/locks/read'],
  // @azure/arm-authorization 9 declares its Permissions interface as `Permissions_2`: the caller's own permissions.
  'Permissions_2.listForResource': ['Microsoft.Authorization/permissions/read'],
  // flushConnection (the opt-in flow flush role): read the NSG, PUT it back, poll (a PUT ends with a GET of it).
  'NetworkSecurityGroups.get': ['Microsoft.Network/networkSecurityGroups/read'],
  'NetworkSecurityGroups.beginCreateOrUpdate': [
    'Microsoft.Network/networkSecurityGroups/write',
    'Microsoft.Network/locations/operations/read',
    'Microsoft.Network/networkSecurityGroups/read',
  ],
};

/**
 * The operations only the opt-in flow flush role grants (infra/modules/role-assignments.bicep, nsgFlushActions):
 * writing an NSG itself, which the rule operator role deliberately cannot.
 */
export const FLUSH_OPERATIONS: ReadonlySet<string> = new Set([
  'NetworkSecurityGroups.get',
  'NetworkSecurityGroups.beginCreateOrUpdate',
]);

export interface ArmCall {
  /** `<operations interface>.<method>`, e.g. `SecurityRules.beginDeleteAndWait`. */
  operation: string;
  /** Repository-relative file and 1-based line of the call. */
  at: string;
}

/** The adapter sources that talk to ARM (every adapter is scanned; only ARM SDK calls are reported). */
export function adapterFiles(): string[] {
  const dir = path.join(REPO_ROOT, 'shared', 'adapters');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

/**
 * Every call in `files` to a method declared by an `@azure/arm-*` package. `virtualFiles` (absolute path → source)
 * lets a test add a file that exists only in memory, resolved as if it sat at that path in the repository.
 */
export function armSdkCalls(
  files: string[],
  virtualFiles: ReadonlyMap<string, string> = new Map(),
): ArmCall[] {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
  };
  // The real file system, with the virtual files laid over it.
  const disk = ts.createCompilerHost(options, true);
  const host: ts.CompilerHost = {
    ...disk,
    fileExists: (f) => virtualFiles.has(f) || disk.fileExists(f),
    readFile: (f) => virtualFiles.get(f) ?? disk.readFile(f),
    getSourceFile: (f, language, onError, create) => {
      const text = virtualFiles.get(f);
      return text !== undefined
        ? ts.createSourceFile(f, text, language, true)
        : disk.getSourceFile(f, language, onError, create);
    },
  };
  const program = ts.createProgram([...files, ...virtualFiles.keys()], options, host);
  const checker = program.getTypeChecker();
  const calls: ArmCall[] = [];
  for (const file of [...files, ...virtualFiles.keys()]) {
    const source = program.getSourceFile(file);
    if (!source) throw new Error(`TypeScript could not read ${file}`);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
        const operation = armOperationOf(checker, node.expression);
        if (operation) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
          calls.push({
            operation,
            at: `${path.relative(REPO_ROOT, file).split(path.sep).join('/')}:${line + 1}`,
          });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return calls;
}

function armOperationOf(checker: ts.TypeChecker, access: ts.PropertyAccessExpression): string | undefined {
  const symbol = checker.getSymbolAtLocation(access.name);
  const declaration = symbol?.declarations?.[0];
  if (!symbol || !declaration) return undefined;
  if (!/[\\/]@azure[\\/]arm-[^\\/]+[\\/]/.test(declaration.getSourceFile().fileName)) return undefined;
  const owner = declaration.parent;
  const ownerName =
    ts.isInterfaceDeclaration(owner) || ts.isClassDeclaration(owner) ? owner.name?.text : undefined;
  return `${ownerName ?? '?'}.${symbol.name}`;
}
