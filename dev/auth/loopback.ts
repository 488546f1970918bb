/** The sandbox's small HTTP servers (provider, front end) on loopback: listen, and stop with nothing left open. */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * Listens on 127.0.0.1 (port 0: a free one); resolves with the server and its port. With `tls` (a key and its
 * certificate, PEM) it serves HTTPS.
 */
export async function listenOnLoopback(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
  tls?: { key: string; cert: string },
): Promise<{ server: Server; port: number }> {
  const server = tls ? createTlsServer(tls, handler) : createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** Stops accepting, then drops the connections still open (a browser's keep-alive). */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
}
