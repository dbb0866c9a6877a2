/** What an owner name may be: it comes from API keys, JWT claims and X-Owner headers. */
export const OWNER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
