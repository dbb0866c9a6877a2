import { execFileSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { makeTempDir } from './tmp';

/*
 * Images for report logos: real ones made by independent tools (poppler's pdftoppm renders a
 * page to PNG or JPEG), and hostile ones made by hand.
 */

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A PNG that claims `width` x `height` RGB pixels; its IDAT holds `rows` rows of them (all, by
 * default), so a huge claim stays a small file: what a decompression bomb looks like.
 */
export function pngClaiming(width: number, height: number, rows = height, options: { alpha?: boolean; idat?: (deflated: Buffer) => Buffer } = {}): Buffer {
  const channels = options.alpha ? 4 : 3;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = options.alpha ? 6 : 2; // RGBA or RGB
  const raw = Buffer.alloc(rows * (1 + width * channels), 0x80);
  for (let r = 0; r < rows; r++) raw[r * (1 + width * channels)] = 0; // filter: none
  const deflated = zlib.deflateSync(raw);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', options.idat ? options.idat(deflated) : deflated),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A real JPEG or PNG (a rendered one-page PDF with a coloured box), made by pdftoppm. */
export async function renderedImage(kind: 'jpeg' | 'png'): Promise<Buffer> {
  const dir = await makeTempDir('stowage-image-');
  try {
    const pdf = path.join(dir, 'box.pdf');
    const content = '1 0 0 rg 10 10 80 30 re f';
    const objects = [
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 50] /Contents 4 0 R >>',
      `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    ];
    let body = '%PDF-1.4\n';
    const offsets: number[] = [];
    objects.forEach((o, i) => {
      offsets.push(body.length);
      body += `${i + 1} 0 obj\n${o}\nendobj\n`;
    });
    const xref = body.length;
    body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
    body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
    await fsp.writeFile(pdf, body);
    execFileSync('pdftoppm', [`-${kind}`, '-r', '144', '-singlefile', pdf, path.join(dir, 'out')]);
    return await fsp.readFile(path.join(dir, kind === 'jpeg' ? 'out.jpg' : 'out.png'));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
