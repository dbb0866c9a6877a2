import zlib from 'node:zlib';
import { LogoRejected } from '../errors';

/*
 * A report's logo is an upload: anything its owner sent. It is told by its bytes (never its name
 * or type), and its dimensions are read from its header and capped before pdfkit decodes it, so a
 * small file that claims to be huge (a decompression bomb) never gets a pixel buffer.
 */

/** The most bytes a logo may have. */
export const LOGO_MAX_BYTES = 2 * 1024 * 1024;
/** The most pixels a logo may have on each side, and in all (a 2000 x 2000 PNG decodes to 16 MB of RGBA). */
export const LOGO_MAX_SIDE = 4000;
export const LOGO_MAX_PIXELS = 4_000_000;

export interface Logo {
  type: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function reject(why: string): never {
  throw new LogoRejected(`The logo ${why}; use a PNG or JPEG of at most ${LOGO_MAX_BYTES} bytes and ${LOGO_MAX_SIDE} pixels a side.`);
}

/** Samples per pixel of each PNG colour type (grey, RGB, palette, grey + alpha, RGBA). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * PNG: IHDR first, then whole chunks up to IEND, so a truncated file is refused here. Its image
 * data must inflate, to no more than its dimensions allow: pdfkit inflates it later in a callback
 * where a zlib error would end the whole thread, not just this report.
 */
function png(data: Buffer): Logo {
  if (data.length < 33 || data.toString('latin1', 12, 16) !== 'IHDR') reject('is not a valid PNG (no IHDR)');
  const width = data.readUInt32BE(16);
  const height = data.readUInt32BE(20);
  const depth = data[24];
  const channels = PNG_CHANNELS[data[25]];
  if (!channels || ![1, 2, 4, 8, 16].includes(depth)) reject('is not a valid PNG (unknown colour type or depth)');
  checkSize(width, height);
  const idat: Buffer[] = [];
  let at = 8;
  for (;;) {
    if (at + 12 > data.length) reject('is a truncated PNG');
    const length = data.readUInt32BE(at);
    const type = data.toString('latin1', at + 4, at + 8);
    if (at + 12 + length > data.length) reject('is a truncated PNG');
    if (type === 'IDAT') idat.push(data.subarray(at + 8, at + 8 + length));
    at += 12 + length;
    if (type === 'IEND') break;
  }
  // Rows of filter byte + samples; an interlaced image's passes add at most a row's worth each.
  const rowBytes = 1 + Math.ceil((width * channels * depth) / 8);
  try {
    zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: (height + 7) * rowBytes * 2 });
  } catch {
    reject('is a PNG whose image data is corrupt or larger than its size says');
  }
  return { type: 'png', width, height };
}

function checkSize(width: number, height: number): void {
  if (width < 1 || height < 1) reject('has no pixels');
  if (width > LOGO_MAX_SIDE || height > LOGO_MAX_SIDE || width * height > LOGO_MAX_PIXELS) reject(`is ${width} x ${height} pixels, too large`);
}

/** SOF markers that carry a frame's size (not DHT C4, JPG C8 or DAC CC). */
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** JPEG: walks the marker segments to the frame header; pdfkit embeds the data without decoding it. */
function jpeg(data: Buffer): Logo {
  let at = 2;
  while (at + 4 <= data.length) {
    if (data[at] !== 0xff) reject('is not a valid JPEG');
    const marker = data[at + 1];
    if (marker === 0xff) {
      at++;
      continue;
    }
    const length = data.readUInt16BE(at + 2);
    if (SOF.has(marker)) {
      if (at + 9 > data.length) break;
      // An image whose end is cut off cannot be printed whole; the EOI marker says it is all there.
      if (data.readUInt16BE(data.length - 2) !== 0xffd9) reject('is a truncated JPEG');
      return { type: 'jpeg', height: data.readUInt16BE(at + 5), width: data.readUInt16BE(at + 7) };
    }
    if (marker === 0xda || length < 2) break;
    at += 2 + length;
  }
  reject('is a truncated or invalid JPEG (no frame header)');
}

/** Checks an upload meant as a logo; throws LogoRejected (422 `logo_rejected`) saying why not. */
export function checkLogo(data: Buffer): Logo {
  if (data.length > LOGO_MAX_BYTES) reject(`is larger than ${LOGO_MAX_BYTES} bytes`);
  let logo: Logo;
  if (data.subarray(0, 8).equals(PNG_MAGIC)) logo = png(data);
  else if (data.length > 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) logo = jpeg(data);
  else reject('is neither a PNG nor a JPEG image');
  checkSize(logo.width, logo.height);
  return logo;
}
