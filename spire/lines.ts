import type { Readable } from 'node:stream';

/** Calls `onLine` for each complete line a child process writes (and the last partial one at the end). */
export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  stream.on('end', () => {
    if (buf) onLine(buf);
  });
}
