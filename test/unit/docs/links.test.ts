/**
 * The README and the docs are the front door of a clone: every link in them resolves to a file (and,
 * with a `#fragment`, to a heading) inside the repository, and none leaves it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DOCS = ['README.md', 'BENCHMARKS.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading] of markdown.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    anchors.add(heading!.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-'));
  }
  return anchors;
}

/** Markdown links `[text](target)` outside code spans and fenced blocks. */
function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

describe.each(DOCS)('%s', (file) => {
  const text = readFileSync(path.join(ROOT, file), 'utf8');

  it('links only inside the repository, to files and headings that exist', () => {
    const broken: string[] = [];
    for (const link of linksOf(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) {
        broken.push(`${link} (leaves the repository)`);
        continue;
      }
      const [target, fragment] = link.split('#') as [string, string | undefined];
      const resolved = target === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), target);
      if (!resolved.startsWith(ROOT + path.sep) || !existsSync(resolved)) {
        broken.push(`${link} (no such file in the repository)`);
        continue;
      }
      if (fragment && resolved.endsWith('.md') && !anchorsOf(readFileSync(resolved, 'utf8')).has(fragment.toLowerCase())) {
        broken.push(`${link} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('the README', () => {
  it('links the architecture and the API contract', () => {
    const links = linksOf(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    expect(links).toEqual(expect.arrayContaining(['docs/ARCHITECTURE.md', 'docs/API.md']));
  });
});
