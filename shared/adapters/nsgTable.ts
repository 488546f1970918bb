import { randomUUID } from 'node:crypto';
import { odata } from '@azure/data-tables';
import type { TableClient } from '@azure/data-tables';
import type { BaselineRule, VmCoverage } from '../domain/baseline';
import { TransientFailure } from '../domain/errors';
import type { NsgLocks, NsgRegistry, WatchedNsg } from '../domain/ports';
import type { NsgGuard, Protocol } from '../domain/types';
import { KeyedMutex } from '../domain/keyedMutex';
import type { Urgency } from '../domain/keyedMutex';
import { grantRowKey } from './grantTable';
import { deleteEntityIfExists, getEntityOrUndefined, restStatus } from './tableStorage';

/**
 * `JitNsgs`: what JIT watches and keeps in NSGs, with columns a person can read in Storage Explorer.
 * - PartitionKey `nsg`, RowKey = hash of the NSG id: an NSG the reconciler sweeps (`nsg`, `ports`, `addresses`,
 *   `reconciledAt`, `drift` = fingerprints of drift already reported).
 * - PartitionKey `vm`, RowKey = hash of the VM id: a VM a policy covers (`vm`, `policy`, `enforce`, `ports`,
 *   `nsgs` = JSON of the NSGs in front of it and the addresses each filters, `refreshedAt`).
 * - PartitionKey `baseline`, RowKey = `<hash of the NSG id>_<rule name>_<hash of the VM id>`: one covered VM's share
 *   of a baseline deny rule to keep (`nsg`, `rule`, `vm`, `policy`, `protocol`, `ports`, `family`, `destinations`,
 *   `removing`); the rule denies towards the destinations of all its rows.
 * - PartitionKey `lease`, RowKey = hash of the NSG id: which instance is writing to the NSG (`owner`, `until`).
 * Hashes because RowKeys may not hold `/`; the readable id is always a column.
 */
const NSG = 'nsg';
const VM = 'vm';
const BASELINE = 'baseline';
const LEASE = 'lease';

const csv = (xs: readonly (string | number)[]) => xs.join(',');
const fromCsv = (text: string | undefined) => (text ? text.split(',').filter(Boolean) : []);

interface NsgEntity {
  partitionKey: string;
  rowKey: string;
  nsg: string;
  ports: string;
  addresses: string;
  reconciledAt?: string;
  drift?: string;
}

interface VmEntity {
  partitionKey: string;
  rowKey: string;
  vm: string;
  policy: string;
  enforce: boolean;
  ports: string;
  nsgs: string;
  refreshedAt: string;
}

interface BaselineEntity {
  partitionKey: string;
  rowKey: string;
  nsg: string;
  rule: string;
  vm: string;
  policy: string;
  protocol: string;
  ports: string;
  family: string;
  destinations: string;
  removing?: boolean;
}

function watched(e: NsgEntity): WatchedNsg {
  return {
    nsgId: e.nsg,
    ports: fromCsv(e.ports).map(Number),
    addresses: fromCsv(e.addresses),
    reconciledAt: e.reconciledAt ?? undefined,
    driftReported: e.drift ? e.drift.split(';').filter(Boolean) : [],
  };
}

/** `<NSG hash>_<rule name>_<VM hash>`: one row per VM sharing a baseline rule (a rule's rows are one prefix range). */
const baselineRowKey = (nsgId: string, ruleName: string, vmId: string) =>
  `${legacyBaselineRowKey(nsgId, ruleName)}_${grantRowKey(vmId)}`;
/** Rows written when each VM had a rule of its own, named after the VM: still read, deleted when released. */
const legacyBaselineRowKey = (nsgId: string, ruleName: string) =>
  `${grantRowKey(nsgId)}_${ruleName.toLowerCase()}`;

export class NsgTable implements NsgRegistry {
  constructor(private readonly client: TableClient) {}

  async watchNsg(nsgId: string, protects: { ports: number[]; addresses: string[] }): Promise<void> {
    const id = nsgId.toLowerCase();
    // Read, merge, write conditionally: two grants on one NSG must not drop each other's ports.
    for (let attempt = 1; attempt <= 5; attempt++) {
      const e = await getEntityOrUndefined<NsgEntity>(this.client, NSG, grantRowKey(id));
      const ports = new Set(fromCsv(e?.ports));
      const addresses = new Set(fromCsv(e?.addresses));
      const before = ports.size + addresses.size;
      protects.ports.forEach((p) => ports.add(String(p)));
      protects.addresses.forEach((a) => addresses.add(a));
      if (e && ports.size + addresses.size === before) return;
      const next = {
        partitionKey: NSG,
        rowKey: grantRowKey(id),
        nsg: id,
        ports: csv([...ports].map(Number).sort((a, b) => a - b)),
        addresses: csv([...addresses].sort()),
      };
      try {
        if (e) await this.client.updateEntity(next, 'Merge', { etag: e.etag });
        else await this.client.createEntity(next);
        return;
      } catch (err) {
        if (restStatus(err) !== 412 && restStatus(err) !== 409) throw err;
      }
    }
    throw new TransientFailure(`the registry row of ${id} kept changing`);
  }

  async *listWatchedNsgs(): AsyncIterable<WatchedNsg> {
    const rows = this.client.listEntities<NsgEntity>({
      queryOptions: { filter: `PartitionKey eq '${NSG}'` },
    });
    for await (const e of rows) yield watched(e);
  }

  async getWatchedNsg(nsgId: string): Promise<WatchedNsg | undefined> {
    const e = await getEntityOrUndefined<NsgEntity>(this.client, NSG, grantRowKey(nsgId));
    return e && watched(e);
  }

  async markSwept(nsgId: string, at: string, driftReported: string[]): Promise<void> {
    try {
      await this.client.updateEntity(
        { partitionKey: NSG, rowKey: grantRowKey(nsgId), reconciledAt: at, drift: driftReported.join(';') },
        'Merge',
      );
    } catch (err) {
      // Forgotten meanwhile: nothing to mark.
      if (restStatus(err) !== 404) throw err;
    }
  }

  async forgetNsg(nsgId: string): Promise<void> {
    await deleteEntityIfExists(this.client, NSG, grantRowKey(nsgId));
  }

  async upsertBaseline(rule: BaselineRule): Promise<void> {
    const entity: BaselineEntity = {
      partitionKey: BASELINE,
      rowKey: baselineRowKey(rule.nsgId, rule.ruleName, rule.vmId),
      nsg: rule.nsgId.toLowerCase(),
      rule: rule.ruleName,
      vm: rule.vmId.toLowerCase(),
      policy: rule.policyScope,
      protocol: rule.protocol,
      ports: csv(rule.ports),
      family: rule.family,
      destinations: csv(rule.destinations),
      removing: rule.removing ?? false,
    };
    await this.client.upsertEntity(entity, 'Replace');
  }

  async deleteBaseline(rule: BaselineRule): Promise<void> {
    await deleteEntityIfExists(this.client, BASELINE, baselineRowKey(rule.nsgId, rule.ruleName, rule.vmId));
    await deleteEntityIfExists(this.client, BASELINE, legacyBaselineRowKey(rule.nsgId, rule.ruleName));
  }

  async listBaselinesInNsg(nsgId: string): Promise<BaselineRule[]> {
    const prefix = `${grantRowKey(nsgId)}_`;
    // Rule names hold only [a-z0-9-], all below `~`: this is the prefix range of one NSG.
    return this.baselines(
      odata`PartitionKey eq ${BASELINE} and RowKey ge ${prefix} and RowKey lt ${`${prefix}~`}`,
    );
  }

  async listBaselinesOfVm(vmId: string): Promise<BaselineRule[]> {
    return this.baselines(odata`PartitionKey eq ${BASELINE} and vm eq ${vmId.toLowerCase()}`);
  }

  private async baselines(filter: string): Promise<BaselineRule[]> {
    const out: BaselineRule[] = [];
    for await (const e of this.client.listEntities<BaselineEntity>({ queryOptions: { filter } })) {
      out.push({
        nsgId: e.nsg,
        ruleName: e.rule,
        vmId: e.vm,
        policyScope: e.policy,
        protocol: e.protocol as Protocol,
        ports: fromCsv(e.ports).map(Number),
        family: e.family === 'ipv6' ? 'ipv6' : 'ipv4',
        destinations: fromCsv(e.destinations),
        removing: e.removing === true,
      });
    }
    return out;
  }

  async upsertCoverage(c: VmCoverage): Promise<void> {
    const entity: VmEntity = {
      partitionKey: VM,
      rowKey: grantRowKey(c.vmId),
      vm: c.vmId.toLowerCase(),
      policy: c.policyScope,
      enforce: c.enforce,
      ports: csv(c.ports),
      nsgs: JSON.stringify(c.guards),
      refreshedAt: c.refreshedAt,
    };
    await this.client.upsertEntity(entity, 'Replace');
  }

  async deleteCoverage(vmId: string): Promise<void> {
    await deleteEntityIfExists(this.client, VM, grantRowKey(vmId));
  }

  async *listCoverage(): AsyncIterable<VmCoverage> {
    const rows = this.client.listEntities<VmEntity>({ queryOptions: { filter: `PartitionKey eq '${VM}'` } });
    for await (const e of rows) {
      yield {
        vmId: e.vm,
        policyScope: e.policy,
        enforce: e.enforce,
        ports: fromCsv(e.ports).map(Number),
        guards: JSON.parse(e.nsgs) as NsgGuard[],
        refreshedAt: e.refreshedAt,
      };
    }
  }
}

export interface NsgLeaseOptions {
  /** How long a lease lasts unless renewed; a crashed holder blocks the NSG this long at most. */
  ttlInMs: number;
  /** How long to wait for a busy NSG before giving up with a TransientFailure (the message is retried). */
  waitInMs: number;
  /** Pause between looks at a held lease (with jitter). */
  pollInMs: number;
  /** How long a lease is kept after a write for the next writer in this process (a burst reuses it). */
  lingerInMs?: number;
  /** Longest a process keeps reusing one lease before it lets other instances have a turn. */
  holdInMs?: number;
}

interface LeaseEntity {
  partitionKey: string;
  rowKey: string;
  nsg: string;
  owner: string;
  until: string;
}

/** A lease this process holds on one NSG. */
interface Held {
  nsgId: string;
  owner: string;
  etag: string;
  since: number;
  renewal: NodeJS.Timeout;
  renewing: Promise<unknown>;
  /** Renewal failed: someone else took it after an expiry. */
  lost: boolean;
  linger?: NodeJS.Timeout;
}

/**
 * Per-NSG write leases in `JitNsgs` (PartitionKey `lease`): a row with an owner and an expiry, taken and renewed
 * with conditional writes. Lets many instances queue for one NSG instead of all hammering ARM with writes that
 * end `AnotherOperationInProgress`. Inside one process, writers of an NSG run one at a time, and a burst of them
 * reuses one lease. Correctness never rests on it: a lease lost to an expiry at worst costs a conflict that the
 * retry loop handles.
 */
export class TableNsgLocks implements NsgLocks {
  private readonly local = new KeyedMutex();
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly client: TableClient,
    private readonly options: NsgLeaseOptions,
  ) {}

  withLock<T>(nsgId: string, task: () => Promise<T>, urgency: Urgency = 'normal'): Promise<T> {
    const key = nsgId.toLowerCase();
    return this.local.run(
      key,
      async () => {
        let h = this.held.get(key);
        if (h) {
          clearTimeout(h.linger);
          if (h.lost || Date.now() - h.since > (this.options.holdInMs ?? this.options.ttlInMs)) {
            await this.release(key, h);
            h = undefined;
          }
        }
        h ??= await this.take(key, nsgId);
        try {
          return await task();
        } finally {
          const kept = h;
          kept.linger = setTimeout(
            () => void this.local.run(key, () => this.release(key, kept)),
            this.options.lingerInMs ?? 100,
          );
          kept.linger.unref();
        }
      },
      urgency,
    );
  }

  /** Gives every lease back (a host shutting down), so other instances need not wait for expiries. */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.held].map(([key, h]) => this.local.run(key, () => this.release(key, h))));
  }

  private async take(key: string, nsgId: string): Promise<Held> {
    const owner = randomUUID();
    const h: Held = {
      nsgId,
      owner,
      etag: await this.acquire(nsgId, owner),
      since: Date.now(),
      renewal: setInterval(
        () => {
          h.renewing = this.client
            .updateEntity(this.lease(nsgId, owner), 'Replace', { etag: h.etag })
            .then((r) => (h.etag = r.etag ?? h.etag))
            .catch(() => {
              h.lost = true;
              clearInterval(h.renewal);
            });
        },
        Math.max(100, Math.floor(this.options.ttlInMs / 3)),
      ),
      renewing: Promise.resolve(),
      lost: false,
    };
    h.renewal.unref();
    this.held.set(key, h);
    return h;
  }

  private async release(key: string, h: Held): Promise<void> {
    if (this.held.get(key) !== h) return;
    this.held.delete(key);
    clearTimeout(h.linger);
    clearInterval(h.renewal);
    await h.renewing;
    // Only our own lease: after an expiry someone else may hold it, and the etag then no longer matches.
    await this.client.deleteEntity(LEASE, grantRowKey(h.nsgId), { etag: h.etag }).catch(() => undefined);
  }

  private lease(nsgId: string, owner: string): LeaseEntity {
    return {
      partitionKey: LEASE,
      rowKey: grantRowKey(nsgId),
      nsg: nsgId.toLowerCase(),
      owner,
      until: new Date(Date.now() + this.options.ttlInMs).toISOString(),
    };
  }

  /** Takes the lease, waiting while another owner holds an unexpired one. Returns the row's etag. */
  private async acquire(nsgId: string, owner: string): Promise<string> {
    const deadline = Date.now() + this.options.waitInMs;
    for (;;) {
      try {
        // The common case, a free NSG, costs one write.
        return (await this.client.createEntity(this.lease(nsgId, owner))).etag ?? '';
      } catch (err) {
        if (restStatus(err) !== 409) throw err;
      }
      const held = await getEntityOrUndefined<LeaseEntity>(this.client, LEASE, grantRowKey(nsgId));
      if (held && Date.parse(held.until) < Date.now()) {
        try {
          return (
            (await this.client.updateEntity(this.lease(nsgId, owner), 'Replace', { etag: held.etag })).etag ??
            ''
          );
        } catch (err) {
          // Someone else took the expired lease first.
          if (restStatus(err) !== 412 && restStatus(err) !== 404) throw err;
        }
      }
      if (!held) continue; // released between our create and our read: try again at once
      if (Date.now() > deadline) {
        throw new TransientFailure(
          `NSG ${nsgId} stayed busy for ${this.options.waitInMs} ms (another instance holds its write lease)`,
        );
      }
      await new Promise((r) =>
        setTimeout(r, this.options.pollInMs / 2 + Math.random() * this.options.pollInMs),
      );
    }
  }
}
