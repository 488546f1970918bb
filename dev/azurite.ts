/**
 * Azurite (the storage emulator, pinned in package.json) as a child process: Tables and Queues (and Blob,
 * which the real Functions host wants for AzureWebJobsStorage). A child process rather than in-process so
 * that tests can kill and restart storage under load, as a real outage would.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/** The well-known development account that Azurite serves (documented, not a secret). */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /** Ports; 0 picks free ones. Defaults are Azurite's usual 10000-10002. */
  blobPort?: number;
  queuePort?: number;
  tablePort?: number;
  /** Folder for persistent data (survives restarts); in memory when undefined. */
  location?: string;
  log?: (line: string) => void;
}

export class Azurite {
  private child?: ChildProcess;
  private ports = { blob: 0, queue: 0, table: 0 };

  constructor(private readonly options: AzuriteOptions = {}) {}

  get connectionString(): string {
    const base = 'http://127.0.0.1';
    return (
      [
        'DefaultEndpointsProtocol=http',
        `AccountName=${DEV_ACCOUNT}`,
        `AccountKey=${DEV_KEY}`,
        `BlobEndpoint=${base}:${this.ports.blob}/${DEV_ACCOUNT}`,
        `QueueEndpoint=${base}:${this.ports.queue}/${DEV_ACCOUNT}`,
        `TableEndpoint=${base}:${this.ports.table}/${DEV_ACCOUNT}`,
      ].join(';') + ';'
    );
  }

  get tablePort(): number {
    return this.ports.table;
  }

  get queuePort(): number {
    return this.ports.queue;
  }

  get blobPort(): number {
    return this.ports.blob;
  }

  async start(): Promise<void> {
    // After a restart, keep the ports the clients already hold.
    const port = (name: 'blob' | 'queue' | 'table', fallback: number | undefined) =>
      String(this.ports[name] || (fallback ?? 0));
    const args = [
      require.resolve('azurite/dist/src/azurite.js'),
      '--blobPort',
      port('blob', this.options.blobPort ?? 10000),
      '--queuePort',
      port('queue', this.options.queuePort ?? 10001),
      '--tablePort',
      port('table', this.options.tablePort ?? 10002),
      // storage-queue 12.30 sends an API version Azurite would otherwise refuse.
      '--skipApiVersionCheck',
      '--disableTelemetry',
      // Access logs of every poll drown what a person wants to see.
      '--silent',
      '--loose',
    ];
    if (this.options.location) {
      mkdirSync(this.options.location, { recursive: true });
      args.push('--location', this.options.location);
    } else {
      args.push('--inMemoryPersistence');
    }
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const seen = new Set<string>();
      let out = '';
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        for (const m of out.matchAll(
          /Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/[^:]+:(\d+)/g,
        )) {
          const kind = (m[1] ?? '').toLowerCase() as 'blob' | 'queue' | 'table';
          this.ports[kind] = Number(m[2]);
          seen.add(kind);
        }
        if (seen.size === 3) {
          child.stdout?.off('data', onData);
          child.stdout?.on('data', (c: Buffer) => this.options.log?.(c.toString().trimEnd()));
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (c: Buffer) => this.options.log?.(c.toString().trimEnd()));
      child.once('exit', (code) =>
        reject(new Error(`Azurite exited (${code}) before it was ready:\n${out}`)),
      );
      child.once('error', reject);
    });
  }

  /** Stops Azurite; `hard` kills it without letting it flush, as a crash would. */
  async stop(hard = false): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    });
  }

  async restart(): Promise<void> {
    await this.stop(true);
    await this.start();
  }
}
