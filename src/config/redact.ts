/** Variables whose values are secrets: never echoed in a problem line or a log. */
const SECRET_VARIABLES = new Set([
  'SECRET_KEY',
  'SECRET_KEY_PREVIOUS',
  'AUTH_JWT_SECRET',
  'METRICS_TOKEN',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'WEBHOOK_SECRET',
]);

/**
 * `scheme://user:password@host` with the password replaced, in any text. Up to the last `@` of
 * the URL: a password typed with unescaped `:`, `/` or `@` (so the URL doesn't parse) is hidden too.
 */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)\S*@(?=[^\s@]*(\s|$|"))/gi, '$1***@');
}

/** How a variable's value may be shown in a problem line: secrets not at all (undefined), URLs without their password. */
export function shownValue(name: string, value: string): string | undefined {
  if (SECRET_VARIABLES.has(name)) return undefined;
  return JSON.stringify(redactUrls(value));
}
