/**
 * The local host in a child process, the one launcher for tests and benchmarks:
 * - a test can kill it the way a crash would (SIGKILL: no clean-up, no flushing, messages left locked) and start
 *   another one against the same emulators; two can run at once, as two instances of the Function App do;
 * - its memory and CPU are its own while the emulators stay in the parent (the benchmarks' peak RSS is the host's);
 * - an `extension` module, loaded in the child once its host runs, can instrument it and answer the parent's
 *   questions (bench/support/childHost.ts times ARM calls that way).
 *
 * The parent starts it with `HostProcess.start(...)`; this file is also the child's entry point.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { LogLevel } from '@azure/functions';
import { configureServices } from '../../shared/composition';
import type { CompositionOverrides } from '../../shared/composition';
import type { HostSettings } from './hostJson';
import { LocalHost } from './localHost';
import { sandboxCredential } from './sandboxCredential';

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
  /**
   * Log lines one each with the time and the child's pid, every line (`all`) or only warnings and errors
   * (`warnings`: what a person wants from a long run). Default: the local host's own console lines.
   */
  lines?: 'all' | 'warnings';
  /**
   * A module the child requires once its host runs; its `extendHost(options)` is called then, and its
   * `answer(message)` for each message the parent sends with `ask` (a reply with the same `type`).
   */
  extension?: { module: string; options?: unknown };
}

/** What an extension module exports (see `HostProcessConfig.extension`). */
export interface HostExtension {
  extendHost(options: unknown): void;
  answer?(message: { type: string }): unknown;
}

type ToChild =
  | { type: 'config'; config: HostProcessConfig }
  | { type: 'stop' }
  | { type: 'ask'; message: { type: string } };
type FromChild =
  | { type: 'ready'; port: number }
  | { type: 'failed'; error: string }
  | { type: 'answer'; answer: { type: string } };

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

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Forks the child and waits until its host listens. What it writes also goes to `logFile` if given. */
  static async start(config: HostProcessConfig, logFile?: string): Promise<HostProcess> {
    const child = fork(__filename, [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: config.settingsInEnvironment ? { ...process.env, ...config.settings } : process.env,
    });
    let sink: WriteStream | undefined;
    if (logFile) sink = createWriteStream(logFile, { flags: 'a' });
    sink?.write(`[${new Date().toISOString()}] host process ${child.pid} started\n`);
    child.once('exit', (code, signal) => {
      sink?.write(`[${new Date().toISOString()}] host process ${child.pid} exited (${signal ?? code})\n`);
      sink?.end();
    });
    const output: string[] = [];
    const keep = (chunk: Buffer) => {
      sink?.write(chunk);
      output.push(chunk.toString());
      if (output.length > 2000) output.splice(0, output.length - 2000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const port = await new Promise<number>((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`host process exited (${code}) before it was ready:\n${output.join('')}`));
      child.once('exit', onExit);
      child.once('message', (m: FromChild) => {
        child.off('exit', onExit);
        if (m.type === 'ready') resolve(m.port);
        else reject(new Error(`host process failed: ${m.type === 'failed' ? m.error : m.type}`));
      });
      child.send({ type: 'config', config } satisfies ToChild);
    });
    return new HostProcess(child, port, output);
  }

  /** Asks the child's extension; resolves with its answer (the first reply of the same `type`). */
  ask<T extends { type: string }>(message: { type: T['type'] }): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromChild) => {
        if (m.type !== 'answer' || m.answer.type !== message.type) return;
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        resolve(m.answer as T);
      };
      const onExit = () => reject(new Error('host process exited'));
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send({ type: 'ask', message } satisfies ToChild);
    });
  }

  /** SIGKILL: the process ends mid-step, as a crash or a scale-in without notice would end it. */
  async kill(): Promise<void> {
    await this.exit(() => this.child.kill('SIGKILL'));
  }

  /** A clean stop: the host finishes what it is running first, then closes its clients. */
  async stop(): Promise<void> {
    await this.exit(() => this.child.send({ type: 'stop' } satisfies ToChild));
  }

  private exit(how: () => void): Promise<void> {
    if (!this.alive) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      how();
    });
  }
}

// ---- the child ------------------------------------------------------------------------------------------

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
    log: config.lines ? pidLines(config.lines) : undefined,
  });
  await host.start();
  let extension: HostExtension | undefined;
  if (config.extension) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    extension = require(config.extension.module) as HostExtension;
    extension.extendHost(config.extension.options);
  }
  const stop = () => void host.stop().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.on('message', (m: ToChild) => {
    if (m.type === 'stop') stop();
    else if (m.type === 'ask') {
      const answer = extension?.answer?.(m.message) as { type: string } | undefined;
      if (answer) process.send?.({ type: 'answer', answer } satisfies FromChild);
    }
  });
  process.send?.({ type: 'ready', port: host.httpPort } satisfies FromChild);
}

function pidLines(which: 'all' | 'warnings') {
  return (level: LogLevel, functionName: string, message: string): void => {
    if (which === 'all' || level === 'warning' || level === 'error' || level === 'critical')
      process.stdout.write(
        `[${new Date().toISOString()}] ${process.pid} ${level} ${functionName}: ${message}\n`,
      );
  };
}

if (require.main === module) {
  // The parent (a test run, a benchmark stopped with Ctrl-C) is gone: so is the reason to run.
  process.once('disconnect', () => process.exit(0));
  process.once('message', (m: ToChild) => {
    if (m.type !== 'config') return;
    runChild(m.config).catch((err: unknown) => {
      process.send?.({ type: 'failed', error: String((err as Error)?.stack ?? err) } satisfies FromChild);
      process.exit(1);
    });
  });
}
