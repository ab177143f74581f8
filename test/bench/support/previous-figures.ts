/**
 * The figures of the previous run, read back from BENCHMARKS.md before a bench rewrites its section, so
 * that a report can show them side by side with the new ones.
 */
import { existsSync, readFileSync } from 'node:fs';
import { BENCHMARKS_FILE } from './benchmarks-md';

/** The text of `heading`'s section (up to the next `## ` heading), or '' when there is none. */
export function previousSection(heading: string, file = BENCHMARKS_FILE): string {
  if (!existsSync(file)) return '';
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((line) => line.trimEnd() === heading);
  if (start === -1) return '';
  const end = lines.findIndex((line, i) => i > start && line.startsWith('## '));
  return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
}

/** The `run …Z` timestamp of a section's `Command:` line, if any. */
export function runOf(section: string): string | undefined {
  return /· run (\S+Z)/.exec(section)?.[1];
}

/**
 * The rows of the first Markdown table under `subheading` (e.g. `### Bundles`) in `section`, as records
 * keyed by the header cells. Empty when the table is missing.
 */
export function tableRows(section: string, subheading: string): Record<string, string>[] {
  const lines = section.split('\n');
  const at = lines.findIndex((line) => line.trim() === subheading);
  if (at === -1) return [];
  const first = lines.findIndex((line, i) => i > at && line.startsWith('|'));
  if (first === -1) return [];
  const cells = (line: string) => line.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
  const header = cells(lines[first]!);
  const rows: Record<string, string>[] = [];
  for (let i = first + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    const values = cells(lines[i]!);
    rows.push(Object.fromEntries(header.map((h, j) => [h, values[j] ?? ''])));
  }
  return rows;
}

/** A number from a table cell (`625.7`, `**MISS**` → undefined). */
export function numberIn(cell: string | undefined): number | undefined {
  const match = /-?\d+(\.\d+)?/.exec(cell ?? '');
  return match ? Number(match[0]) : undefined;
}
