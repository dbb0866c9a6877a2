import { LogoRejected } from '../errors';
import type { ReportOptions } from './spec';

/*
 * What a PDF report prints around its table: the page (size, orientation, margins), a header band
 * (logo and header text) and the footer on every page.
 */

export const DEFAULT_MARGIN = 36;
export const DEFAULT_FOOTER = 'Page {page} of {pages}';
export const FURNITURE_SIZE = 8;
/** The logo's height in the header band, in points; its width follows its aspect ratio. */
export const LOGO_HEIGHT = 28;
const BAND_GAP = 8;

export interface Frame {
  size: 'A4' | 'Letter';
  layout: 'portrait' | 'landscape';
  top: number;
  right: number;
  bottom: number;
  left: number;
  /** Height of the header band above the table (0 without header text or logo). */
  band: number;
}

export function frameFor(options: ReportOptions, hasLogo: boolean): Frame {
  const m = options.margins ?? {};
  const text = options.header ? FURNITURE_SIZE * 1.2 : 0;
  const tallest = Math.max(text, hasLogo ? LOGO_HEIGHT : 0);
  return {
    size: options.pageSize ?? 'A4',
    layout: options.landscape ? 'landscape' : 'portrait',
    top: m.top ?? DEFAULT_MARGIN,
    right: m.right ?? DEFAULT_MARGIN,
    bottom: m.bottom ?? DEFAULT_MARGIN,
    left: m.left ?? DEFAULT_MARGIN,
    band: tallest ? tallest + BAND_GAP : 0,
  };
}

/** A logo opened once, so every page refers to the one embedded image. */
export interface PageLogo {
  image: PDFKit.Mixins.ImageSrc;
  width: number;
  height: number;
}

/**
 * Opens and embeds the logo (checked by logo.ts before it got here); pdfkit failing on it
 * anyway (a PNG whose compressed data is corrupt) is the logo's fault, not a reason to retry.
 */
export function openLogo(doc: PDFKit.PDFDocument, logo: { data: Buffer; width: number; height: number }): PageLogo {
  try {
    const image = (doc as unknown as { openImage(src: Buffer): PDFKit.Mixins.ImageSrc & { embed(doc: unknown): void } }).openImage(logo.data);
    image.embed(doc);
    return { image, width: logo.width, height: logo.height };
  } catch (err) {
    throw new LogoRejected(`The logo could not be read as an image (${(err as Error).message}).`);
  }
}

export interface Placeholders {
  page: number;
  pages: number;
  date: string;
  title: string;
}

/** Fills `{page}`, `{pages}`, `{date}` and `{title}`; other braces are left as typed. */
export function fillPlaceholders(text: string, values: Placeholders): string {
  return text.replace(/\{(page|pages|date|title)\}/g, (_, key: keyof Placeholders) => String(values[key]));
}

/**
 * Draws one line of furniture text in a box `room` wide (cut to fit): the writer's, so any script
 * is drawn in a font that has it (fonts/).
 */
export type FurnitureText = (line: string, x: number, y: number, room: number, align: 'right' | 'center') => void;

/**
 * Draws the header band (logo at the left, header text at the right) and the footer (centred)
 * of one page.
 */
export function drawFurniture(
  doc: PDFKit.PDFDocument,
  frame: Frame,
  options: ReportOptions,
  logo: PageLogo | undefined,
  values: Placeholders,
  write: FurnitureText,
): void {
  const { width: pageWidth, height: pageHeight } = doc.page;
  const right = pageWidth - frame.right;
  doc.fillColor('black');
  if (logo) {
    const width = (LOGO_HEIGHT * logo.width) / logo.height;
    doc.image(logo.image, frame.left, frame.top, { width: Math.min(width, (right - frame.left) / 2), height: LOGO_HEIGHT });
  }
  if (options.header) {
    const text = fillPlaceholders(options.header, values);
    const room = logo ? (right - frame.left) / 2 : right - frame.left;
    write(text, right - room, frame.top, room, 'right');
  }
  const footer = fillPlaceholders(options.footer ?? DEFAULT_FOOTER, values);
  const width = right - frame.left;
  write(footer, frame.left, pageHeight - frame.bottom - FURNITURE_SIZE, width, 'center');
}
