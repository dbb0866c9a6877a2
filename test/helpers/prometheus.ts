const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LABEL}(?:,${LABEL})*,?)?\\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]?[Ii]nf)( -?\\d+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/**
 * A strict reader of the Prometheus text exposition format (0.0.4): every line must be a HELP,
 * a TYPE or a sample of a declared metric, or parsing throws. Returns samples by
 * `name{labels}` exactly as written, e.g. `stowage_uploads_total{outcome="stored"}`.
 */
export function parsePrometheus(text: string): Map<string, number> {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  const lines = text.split('\n');
  if (lines.pop() !== '') throw new Error('exposition must end with a newline');
  for (const line of lines) {
    if (line === '' || HELP.test(line)) continue;
    const type = TYPE.exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`not a Prometheus line: ${JSON.stringify(line)}`);
    const [, name, labels = '', value] = sample;
    const base = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(base)) throw new Error(`sample of undeclared metric: ${line}`);
    // Values are Go floats: NaN and Inf in any case, as Prometheus's own parser reads them.
    const number = /nan/i.test(value) ? NaN : Number(value.replace(/inf/i, 'Infinity'));
    if (Number.isNaN(number) && !/nan/i.test(value)) throw new Error(`bad value: ${line}`);
    samples.set(`${name}${labels}`, number);
  }
  return samples;
}
