/**
 * Where the logger's and the metrics' lines go, byte for byte where Powertools 2.36 puts them. Powertools
 * builds a `new Console({ stdout: process.stdout, stderr: process.stderr })` (the Lambda runtime patches
 * the global console with a prefix of its own, which these JSON lines must not get), or takes the global
 * console when `POWERTOOLS_DEV` is on. Such a Console writes `text + '\n'` to stdout for `log`, `info` and
 * `debug` and to stderr for `warn` and `error`, and swallows the stream's write errors. Here the same
 * bytes are written to the same stream without building a Console (~1 ms at import); the streams are
 * first touched at the first line, not at import.
 */

export type ConsoleMethod = 'log' | 'info' | 'debug' | 'warn' | 'error';

const noop = () => undefined;

/** Writes `text` as `console[method](text)` would: the global console in dev mode, else as Powertools' Console. */
export function writeLine(method: ConsoleMethod, text: string, dev: boolean): void {
  if (dev) {
    console[method](text);
    return;
  }
  const stream = method === 'warn' || method === 'error' ? process.stderr : process.stdout;
  // As Node's Console (ignoreErrors): a write error, synchronous or not, is dropped, never thrown.
  try {
    if (stream.listenerCount('error') === 0) stream.once('error', noop);
    stream.write(`${text}\n`, (error) => {
      if (error && stream.listenerCount('error') === 0) stream.once('error', noop);
    });
  } catch {
    // A line that cannot be written is lost, as with a Console.
  } finally {
    stream.removeListener('error', noop);
  }
}
