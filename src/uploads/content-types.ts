/** Whether `type` matches one of the allowed types (`image/png`, or a wildcard `image/*`). */
export function typeAllowed(allowed: string[], type: string): boolean {
  const t = type.toLowerCase();
  return allowed.some((a) => a === t || (a.endsWith('/*') && t.startsWith(a.slice(0, -1))));
}
