/**
 * Every relative link in README.md, docs/*.md and bench/README.md points at a file or directory
 * that exists, and every `#anchor` at a heading of the linked (or the same) document, with
 * GitHub's anchor rules. External links (http:, https:, mailto:) are not fetched.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/service';
import { documents, githubSlug, headingAnchors, links, readDocument } from './markdown';

function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  for (const { target, line } of links(readDocument(file))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const where = `${file}:${line}: ${target}`;
    const hash = target.indexOf('#');
    const pathPart = hash < 0 ? target : target.slice(0, hash);
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const resolved = pathPart ? path.resolve(ROOT, path.dirname(file), decodeURIComponent(pathPart)) : path.join(ROOT, file);
    if (path.relative(ROOT, resolved).startsWith('..')) {
      problems.push(`${where}: points outside the repository`);
      continue;
    }
    if (!fs.existsSync(resolved)) {
      problems.push(`${where}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!resolved.endsWith('.md')) {
      problems.push(`${where}: an anchor into a file that is not markdown`);
      continue;
    }
    const anchors = headingAnchors(fs.readFileSync(resolved, 'utf8'));
    if (!anchors.has(anchor)) problems.push(`${where}: no heading with that anchor in ${path.relative(ROOT, resolved)}`);
  }
  return problems;
}

describe('links in the docs', () => {
  it.each(documents())('every relative link and anchor in %s resolves', (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });

  it('README links to every page of docs/ and to bench/README.md', () => {
    const targets = new Set(links(readDocument('README.md')).map((l) => l.target.split('#')[0]));
    const pages = documents().filter((f) => f !== 'README.md');
    expect(pages.filter((p) => !targets.has(p))).toEqual([]);
    expect(pages).toEqual(expect.arrayContaining(['docs/api.md', 'docs/configuration.md', 'docs/storage.md', 'docs/operations.md', 'docs/deploy.md', 'docs/architecture.md', 'bench/README.md']));
  });
});

describe('githubSlug', () => {
  it.each([
    ['Scaling out on PostgreSQL', 'scaling-out-on-postgresql'],
    ['Fly.io volumes', 'flyio-volumes'],
    ['Map of `src/`', 'map-of-src'],
    ['Upload: `POST /v1/files`', 'upload-post-v1files'],
    ['List: `GET /v1/files?limit=50&cursor=...`', 'list-get-v1fileslimit50cursor'],
    ['Scale-out', 'scale-out'],
    ['Zoë & co', 'zoë--co'],
  ])('%s -> %s', (heading, slug) => {
    expect(githubSlug(heading)).toBe(slug);
  });

  it('numbers repeated headings as GitHub does', () => {
    expect([...headingAnchors('# A\n## Notes\n```bash\n# Notes\n```\n## Notes\n')]).toEqual(['a', 'notes', 'notes-1']);
  });
});
