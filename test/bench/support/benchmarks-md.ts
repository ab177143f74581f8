/**
 * Writes one benchmark's section of BENCHMARKS.md. Each benchmark owns the section under its own
 * `## ` heading and rewrites only that: from its heading up to the next `## ` heading (or the end of
 * the file). Other sections are left byte for byte. The file is read right before it is written and
 * replaced by rename, so a concurrent writer of another section loses nothing unless both write within
 * the same instant.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The repository's BENCHMARKS.md. */
export const BENCHMARKS_FILE = path.resolve(__dirname, '../../../BENCHMARKS.md');

/**
 * Replaces (or appends) the section whose heading line is exactly `heading` (e.g.
 * `## Database (npm run bench:db)`) with `heading` followed by `body`. Creates the file with a
 * `# Benchmarks` title when it does not exist.
 */
export async function writeBenchmarkSection(heading: string, body: string, file = BENCHMARKS_FILE): Promise<void> {
  if (!heading.startsWith('## ')) throw new Error(`a section heading starts with "## ", got "${heading}"`);
  const section = `${heading}\n\n${body.trim()}\n`;
  const current = existsSync(file) ? await readFile(file, 'utf8') : '# Benchmarks\n';
  const lines = current.split('\n');
  const start = lines.findIndex((line) => line.trimEnd() === heading);
  let next: string;
  if (start === -1) {
    next = `${current.trimEnd()}\n\n${section}`;
  } else {
    const after = lines.findIndex((line, i) => i > start && line.startsWith('## '));
    const before = lines.slice(0, start).join('\n').trimEnd();
    const rest = after === -1 ? '' : lines.slice(after).join('\n');
    next = `${before}\n\n${section}${rest ? `\n${rest}` : ''}`;
  }
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, next.endsWith('\n') ? next : `${next}\n`);
  await rename(temporary, file);
}
