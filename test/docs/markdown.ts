import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/service';

/** The documents the docs tests cover, relative to the repository root. */
export function documents(): string[] {
  const docs = fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs, ...(fs.existsSync(path.join(ROOT, 'bench/README.md')) ? ['bench/README.md'] : [])];
}

export function readDocument(file: string): string {
  return fs.readFileSync(path.join(ROOT, file), 'utf8');
}

export interface FencedBlock {
  /** The fence's info string up to the first space: `bash`, `console`, `json`... ('' when none). */
  lang: string;
  body: string;
  /** 1-based lines of the opening and the closing fence. */
  line: number;
  endLine: number;
}

const OPEN = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;

/** Every fenced code block (``` or ~~~, CommonMark rules for the closing fence). */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    const close = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !close.test(lines[j])) body.push(lines[j++]);
    blocks.push({ lang: open[2].toLowerCase(), body: body.join('\n'), line: i + 1, endLine: Math.min(j + 1, lines.length) });
    i = j;
  }
  return blocks;
}

/** The text outside fenced blocks (fenced lines blanked, so line numbers still match). */
export function withoutFences(markdown: string): string {
  const lines = markdown.split('\n');
  for (const block of fencedBlocks(markdown)) {
    for (let k = block.line - 1; k < block.endLine; k++) lines[k] = '';
  }
  return lines.join('\n');
}

/** GitHub's anchor for a heading's text: formatting dropped, lowercased, punctuation removed, spaces to hyphens. */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

/** The anchors GitHub generates for a document's headings (repeats get -1, -2...). */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutFences(markdown).split('\n')) {
    const m = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (!m) continue;
    const slug = githubSlug(m[1]);
    const n = seen.get(slug) ?? 0;
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
    seen.set(slug, n + 1);
  }
  return anchors;
}

export interface Link {
  target: string;
  line: number;
}

/** Inline links and images outside code: `[text](target)`, `![alt](target "title")`. */
export function links(markdown: string): Link[] {
  const found: Link[] = [];
  withoutFences(markdown)
    .split('\n')
    .forEach((text, i) => {
      const prose = text.replace(/`[^`]*`/g, 'code');
      for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push({ target: m[1], line: i + 1 });
    });
  return found;
}
