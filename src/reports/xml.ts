/** Characters XML 1.0 cannot carry at all, not even escaped: they are dropped. */
const INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;
const SPECIAL = /[<>&"\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

/** Escapes text for an XML element or a double-quoted attribute. */
export function escapeXml(text: string): string {
  // Most cells need nothing; the test is much cheaper than the replaces.
  if (!SPECIAL.test(text)) return text;
  return text
    .replace(INVALID, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}
