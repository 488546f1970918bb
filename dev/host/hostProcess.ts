/**
 * The local host in a child process, so that a test can kill it the way a crash would (SIGKILL: no clean-up,
 * no flushing, messages left locked) and start another one against the same emulators. Also what lets two
 * hosts run at once, as two instances of the Function App do.
 *
 * The parent starts it with `HostProcess.start(...)`; this file is also the child's entry point.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { TokenCredential } from '@azure/core-auth';
import { configureServices } from '../../shared/composition';
import type { CompositionOverrides } from '../../shared/composition';
import type { HostSettings } from './hostJson';
import { LocalHost } from './localHost';

/** What the child needs to build its services and host (sent over IPC). */
export interface HostProcessConfig {
  functionsDir: string;
  host: HostSettings;
  settings: Record<string, string>;
  /**
   * Put the settings in the child's environment, as App Service does, and let the configuration read
   * process.env itself (otherwise they go over IPC and the environment holds none).
   */
  settingsInEnvironment?: boolean;
  armCaPem: string;
  overrides?: Pick<
    CompositionOverrides,
    'armPollIntervalInMs' | 'armRetryDelayInMs' | 'nsgLease' | 'settings'
  >;
}

type FromChild = { type: 'ready'; port: number } | { type: 'failed'; error: string };

export class HostProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** The last things the child wrote, for a test to print when it fails. */
    readonly output: string[],
  ) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(config: HostProcessConfig): Promise<HostProcess> {
    const child = fork(__filename, [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: config.settingsInEnvironment ? { ...process.env, ...config.settings } : process.env,
    });
    const output: string[] = [];
    const keep = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.length > 2000) output.splice(0, output.length - 2000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: FromChild) =>
        m.type === 'ready' ? resolve(m.port) : reject(new Error(`host process failed: ${m.error}`)),
      );
      child.once('exit', (code) => reject(new Error(`host process exited (${code}):\n${output.join('')}`)));
      child.send(config);
    });
    return new HostProcess(child, port, output);
  }

  /** SIGKILL: the process ends mid-step, as a crash or a scale-in without notice would end it. */
  async kill(): Promise<void> {
    await this.exit('SIGKILL');
  }

  /** A clean stop: the host finishes what it is running first. */
  async stop(): Promise<void> {
    await this.exit('SIGTERM');
  }

  private exit(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill(signal);
    });
  }
}

// Accepted by the ARM emulator; the sandbox's own credential, repeated here so the child loads no more than it needs.
const sandboxCredential: TokenCredential = {
  getToken: async () => ({ token: 'sandbox-token', expiresOnTimestamp: Date.now() + 3600_000 }),
};

async function runChild(config: HostProcessConfig): Promise<void> {
  configureServices({
    env: config.settingsInEnvironment ? undefined : config.settings,
    armCredential: sandboxCredential,
    armCaPem: config.armCaPem,
    ...config.overrides,
  });
  const host = new LocalHost({
    functionsDir: config.functionsDir,
    host: config.host,
    settings: config.settings,
    httpPort: 0,
  });
  await host.start();
  process.once('SIGTERM', () => {
    void host.stop().finally(() => process.exit(0));
  });
  process.send?.({ type: 'ready', port: host.httpPort } satisfies FromChild);
}

if (require.main === module) {
  // The parent (a test run) is gone: so is the reason to run.
  process.once('disconnect', () => process.exit(0));
  process.once('message', (config: HostProcessConfig) => {
    runChild(config).catch((err: unknown) => {
      process.send?.({ type: 'failed', error: String((err as Error)?.stack ?? err) } satisfies FromChild);
      process.exit(1);
    });
  });
}
