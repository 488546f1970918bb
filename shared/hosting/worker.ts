/** A module of its own, importing nothing, so that anything may ask without loading the composition root. */
let worker: boolean | undefined;

/**
 * Whether the Azure Functions Node.js worker runs this process. The worker provides the module
 * `@azure/functions-core` by intercepting `require` (Azure/azure-functions-nodejs-worker, src/setupCoreModule.ts:
 * "available to users only at runtime, not as an installable npm package"); @azure/functions looks for it the same
 * way. Outside the worker — the local host, tests, scripts — the package only prints "Skipping call to register
 * function … test mode" for each app.* call, so none is made there: the local host binds the declarations itself.
 */
export function underFunctionsWorker(): boolean {
  if (worker === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@azure/functions-core');
      worker = true;
    } catch {
      worker = false;
    }
  }
  return worker;
}
