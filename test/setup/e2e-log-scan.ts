/**
 * For every e2e test file: everything the file's processes write to stdout and stderr (the local
 * stack's handlers log there, as Lambda's do, at DEBUG here so that every line a handler can write is
 * seen) is captured, and after the file's tests it must hold no token, email, person's name or presigned
 * URL (test/support/log-secrets.ts). People's names are the ones the file sent in request bodies. A
 * file that was answered by route handlers must have produced request lines: a capture that sees
 * nothing fails too.
 * Other tiers are left alone.
 */
import path from 'node:path';
import { findSecrets, personNamesIn } from '../support/log-secrets';

const testPath = expect.getState().testPath ?? '';

if (testPath.includes(`${path.sep}test${path.sep}e2e${path.sep}`)) {
  // Read by the loggers when the handler modules are first loaded, after this file.
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  const lines: string[] = [];
  const names = new Set<string>();
  // Answers that a route's wrapper gave (it alone sets X-Correlation-Id): each wrote a request line.
  let wrapped = 0;

  const restores = [process.stdout, process.stderr].map((stream) => {
    const original = stream.write;
    stream.write = function write(this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      lines.push(...text.split('\n').filter((l) => l.trim() !== ''));
      // The loggers' JSON lines are kept out of the run's output; anything else still shows.
      if (text.startsWith('{')) {
        const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      }
      return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof stream.write;
    return () => (stream.write = original);
  });

  const originalFetch = globalThis.fetch;
  globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const url = String(input instanceof Request ? input.url : input);
    if (/^http:\/\/(127\.0\.0\.1|localhost):\d+\/api\//.test(url)) {
      if (typeof init?.body === 'string') {
        try {
          personNamesIn(JSON.parse(init.body)).forEach((n) => names.add(n));
        } catch {
          // Not JSON (a bad-input case): it holds no person's name of ours.
        }
      }
    }
    const response = await originalFetch(input, init);
    if (response.headers.has('x-correlation-id')) wrapped++;
    return response;
  }) as typeof fetch;

  afterAll(() => {
    restores.forEach((restore) => restore());
    globalThis.fetch = originalFetch;
    const findings = findSecrets(lines, names);
    if (findings.length > 0) {
      const shown = findings.slice(0, 5).map((f) => `  ${f.kind}: ${f.line.slice(0, 400)}`).join('\n');
      throw new Error(`${findings.length} log line(s) of this file hold a secret:\n${shown}`);
    }
    if (wrapped > 0 && !lines.some((l) => l.includes('"message":"request"'))) {
      throw new Error(`${wrapped} answers of this file came from route handlers but no request log line was captured`);
    }
  });
}
