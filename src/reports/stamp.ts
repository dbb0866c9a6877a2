/** When a report was generated, as its readers see it: in the report's time zone (options.timeZone). */

export interface Stamp {
  /** `{date}`: the day the report was generated, in the report's time zone. */
  date: string;
  /** Under the title: "Generated 2026-12-01 06:12 (Europe/Paris)". */
  line: string;
}

/** When the report was made, as read in `timeZone` (an IANA name; UTC by default). */
export function generatedAt(now: Date, timeZone = 'UTC'): Stamp {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(now);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  const date = `${part('year')}-${part('month')}-${part('day')}`;
  return { date, line: `Generated ${date} ${part('hour')}:${part('minute')} (${timeZone})` };
}
