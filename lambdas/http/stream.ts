/**
 * A pull-based byte stream over text chunks: the next chunk is produced only when the consumer
 * asks for it, so a slow reader holds the producer back and memory stays bounded. The first
 * chunk is produced before the stream is returned, so a failure that happens before any output
 * (bad input, store down) still reaches the caller as an error rather than a cut-off body.
 */
export async function textStream(chunks: AsyncIterable<string>, onError: (e: unknown) => void): Promise<ReadableStream<Uint8Array>> {
  const it = chunks[Symbol.asyncIterator]();
  const enc = new TextEncoder();
  const first = await it.next();
  let pending: IteratorResult<string> | undefined = first;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        // Batch small chunks into one enqueue of up to ~64 KiB.
        let buf = '';
        while (buf.length < 65_536) {
          const r = pending ?? (await it.next());
          pending = undefined;
          if (r.done) {
            if (buf) controller.enqueue(enc.encode(buf));
            controller.close();
            return;
          }
          buf += r.value;
        }
        controller.enqueue(enc.encode(buf));
      } catch (e) {
        onError(e);
        controller.error(e);
      }
    },
    async cancel() {
      await it.return?.(undefined);
    },
  });
}
