import { BlobServiceClient } from '@azure/storage-blob';
import type { ContainerClient } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/core-auth';
import type { Connection } from '../config';
import { parseAnchor } from '../domain/auditAnchor';
import type { DayAnchor } from '../domain/auditAnchor';
import { daysBetween } from '../domain/auditQuery';
import type { AuditAnchorStore } from '../domain/ports';
import { CONTAINERS } from '../names';
import { restStatus } from './tableStorage';

/** A ContainerClient from a connection string (sandbox) or the Blob service URI with a credential (Azure). */
function containerClient(
  connection: Connection,
  container: string,
  credential: () => TokenCredential,
): ContainerClient {
  const service =
    connection.kind === 'connectionString'
      ? BlobServiceClient.fromConnectionString(connection.connectionString)
      : new BlobServiceClient(connection.endpoint.replace(/\/$/, ''), credential());
  return service.getContainerClient(container);
}

/**
 * `jit-audit-anchors`: one blob per anchored day, `<yyyy-MM-dd>.json`. In Azure the container carries a time-based
 * retention policy (infra/modules/storage.bicep): a blob can be created and read, and neither overwritten nor
 * deleted until it is older than the retention period
 * (https://learn.microsoft.com/azure/storage/blobs/immutable-time-based-retention-policy-overview).
 *
 * The local sandbox's Azurite does not implement immutability policies (its README lists "Blob Immutability Policy
 * and Legal Hold" as not supported), so there an overwrite would succeed. This adapter therefore never relies on
 * the policy: it creates each blob with `If-None-Match: *`, which the service answers `409 BlobAlreadyExists`
 * when the blob exists (https://learn.microsoft.com/rest/api/storageservices/specifying-conditional-headers-for-blob-service-operations),
 * and it has no update or delete.
 */
export class BlobAuditAnchors implements AuditAnchorStore {
  constructor(private readonly container: ContainerClient) {}

  static fromConnection(connection: Connection, credential: () => TokenCredential): BlobAuditAnchors {
    return new BlobAuditAnchors(containerClient(connection, CONTAINERS.auditAnchors, credential));
  }

  async create(anchor: DayAnchor): Promise<'created' | 'exists'> {
    const body = JSON.stringify(anchor, null, 2);
    try {
      await this.container.getBlockBlobClient(blobName(anchor.day)).upload(body, Buffer.byteLength(body), {
        conditions: { ifNoneMatch: '*' },
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
      return 'created';
    } catch (err) {
      // 409 BlobAlreadyExists; 412 where a service reports the failed condition that way.
      const status = restStatus(err);
      if (status === 409 || status === 412) return 'exists';
      throw err;
    }
  }

  async get(day: string): Promise<DayAnchor | 'invalid' | undefined> {
    try {
      const buffer = await this.container.getBlockBlobClient(blobName(day)).downloadToBuffer();
      return parseAnchor(buffer.toString('utf8')) ?? 'invalid';
    } catch (err) {
      if (restStatus(err) === 404) return undefined;
      throw err;
    }
  }

  async listDays(fromDay: string, toDay: string): Promise<string[]> {
    const out: string[] = [];
    // One listing per year in range (blob names sort by day), not one request per day.
    const years = [...new Set(daysBetween(fromDay, toDay).map((d) => d.slice(0, 4)))];
    for (const year of years) {
      for await (const blob of this.container.listBlobsFlat({ prefix: `${year}-` })) {
        const day = /^(\d{4}-\d{2}-\d{2})\.json$/.exec(blob.name)?.[1];
        if (day && day >= fromDay && day <= toDay) out.push(day);
      }
    }
    return out.sort();
  }
}

const blobName = (day: string) => `${day}.json`;
