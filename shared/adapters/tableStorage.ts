import { TableClient } from '@azure/data-tables';
import type { TableEntityResult } from '@azure/data-tables';
import type { TokenCredential } from '@azure/core-auth';
import type { Connection } from '../config';

/** A TableClient for one table, from a connection string (sandbox) or an endpoint with a credential (Azure). */
export function tableClient(
  connection: Connection,
  table: string,
  credential: () => TokenCredential,
): TableClient {
  if (connection.kind === 'connectionString') {
    return TableClient.fromConnectionString(connection.connectionString, table, {
      allowInsecureConnection: /(^|;)\s*(TableEndpoint|DefaultEndpointsProtocol)=http(:|;)/i.test(
        connection.connectionString,
      ),
    });
  }
  return new TableClient(connection.endpoint, table, credential());
}

/** Status code of a failed table call, or undefined if it was not a REST error. */
export function restStatus(err: unknown): number | undefined {
  const e = err as { name?: string; statusCode?: number };
  return e?.name === 'RestError' ? e.statusCode : undefined;
}

/** Reads one entity; undefined where it does not exist. */
export async function getEntityOrUndefined<T extends object>(
  client: TableClient,
  partitionKey: string,
  rowKey: string,
): Promise<TableEntityResult<T> | undefined> {
  try {
    return await client.getEntity<T>(partitionKey, rowKey);
  } catch (err) {
    if (restStatus(err) === 404) return undefined;
    throw err;
  }
}

/** Deletes one entity; one that is already gone is fine. */
export async function deleteEntityIfExists(
  client: TableClient,
  partitionKey: string,
  rowKey: string,
): Promise<void> {
  try {
    await client.deleteEntity(partitionKey, rowKey);
  } catch (err) {
    if (restStatus(err) !== 404) throw err;
  }
}
