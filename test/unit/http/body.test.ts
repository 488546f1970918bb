import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HttpRequest } from '@azure/functions';
import { InvalidRequest } from '../../../shared/domain/errors';
import { readBodyText } from '../../../shared/http/handler';

/** A request whose body streams `chunks` of 1 KiB without end (no Content-Length: chunked), counting what is read. */
function endless(headers: Record<string, string> = {}) {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += 1024;
      controller.enqueue(new Uint8Array(1024).fill(0x61));
    },
  });
  const request = { headers: new Headers(headers), body } as unknown as HttpRequest;
  return { request, pulled: () => pulled };
}

test('a body is refused as it streams in, once past the limit: a chunked body is never read to its end', async () => {
  const { request, pulled } = endless();
  await assert.rejects(readBodyText(request, 16 * 1024), (err: unknown) => {
    assert.ok(err instanceof InvalidRequest);
    assert.match(err.problems[0]!.reason, /at most 16384 bytes/);
    return true;
  });
  // Read up to the limit and one chunk more (plus what the stream buffered ahead), then abandoned.
  assert.ok(pulled() <= 16 * 1024 + 3 * 1024, `read ${pulled()} bytes`);
});

test('a declared Content-Length over the limit is refused before anything is read; a small body is read whole', async () => {
  const { request, pulled } = endless({ 'content-length': String(10 * 1024 * 1024) });
  await assert.rejects(readBodyText(request, 16 * 1024), InvalidRequest);
  assert.ok(pulled() <= 1024, `read ${pulled()} bytes`);
  const small = {
    headers: new Headers(),
    body: new Blob(['{"a":1}']).stream(),
  } as unknown as HttpRequest;
  assert.equal(await readBodyText(small, 16 * 1024), '{"a":1}');
});
