import zlib from 'node:zlib';
import { checkLogo, LOGO_MAX_BYTES } from '../../src/reports/logo';
import { pngClaiming, renderedImage } from '../helpers/images';

describe('checkLogo', () => {
  it('reads the size of real PNG and JPEG files from their headers', async () => {
    // pdftoppm renders the 100 x 50 pt page at 144 dpi: 200 x 100 pixels.
    expect(checkLogo(await renderedImage('png'))).toEqual({ type: 'png', width: 200, height: 100 });
    expect(checkLogo(await renderedImage('jpeg'))).toEqual({ type: 'jpeg', width: 200, height: 100 });
  });

  const hostile: [string, () => Promise<Buffer> | Buffer, RegExp][] = [
    ['a PNG claiming 100000 x 100000 pixels', () => pngClaiming(100_000, 100_000, 1), /is 100000 x 100000 pixels, too large/],
    ['a truncated PNG', () => pngClaiming(40, 40).subarray(0, 60), /truncated PNG/],
    ['a PNG with alpha whose image data is corrupt', () => pngClaiming(40, 40, 40, { alpha: true, idat: (d) => Buffer.concat([d.subarray(0, 2), Buffer.alloc(d.length - 2, 0xff)]) }), /image data is corrupt/],
    ['a small PNG whose data inflates far past its size', () => pngClaiming(10, 10, 10, { idat: () => zlib.deflateSync(Buffer.alloc(50 * 1024 * 1024)) }), /larger than its size says/],
    ['a truncated JPEG', async () => (await renderedImage('jpeg')).subarray(0, 400), /truncated JPEG/],
    ['a JPEG cut before its frame header', async () => (await renderedImage('jpeg')).subarray(0, 30), /no frame header/],
    ['an SVG', () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), /neither a PNG nor a JPEG/],
    ['HTML named logo.png', () => Buffer.from('<!doctype html><script>alert(1)</script>'), /neither a PNG nor a JPEG/],
    ['a file over the size cap', () => Buffer.concat([pngClaiming(10, 10), Buffer.alloc(LOGO_MAX_BYTES)]), /larger than 2097152 bytes/],
  ];
  it.each(hostile)('refuses %s with logo_rejected', async (_name, make, message) => {
    const data = await make();
    expect(() => checkLogo(data)).toThrow(expect.objectContaining({ code: 'logo_rejected', status: 422, message: expect.stringMatching(message) }));
  });
});
