// k6 threshold expressions (`p(95)<1000`, `rate>0.99`, `count==0`, `avg<200`, ...) evaluated over
// the aggregated samples, and the aggregation itself.

/** Aggregates one metric's samples the way k6 reports it. */
export function aggregate(samples) {
  const { type } = samples[0];
  const values = samples.map((s) => s.value);
  if (type === 'counter') return { type, count: values.reduce((a, b) => a + b, 0) };
  if (type === 'gauge') return { type, value: values[values.length - 1], min: Math.min(...values), max: Math.max(...values) };
  if (type === 'rate') {
    const passes = values.filter((v) => v !== 0).length;
    return { type, rate: passes / values.length, passes, fails: values.length - passes };
  }
  const sorted = [...values].sort((a, b) => a - b);
  return {
    type,
    isTime: samples[0].isTime,
    avg: values.reduce((a, b) => a + b, 0) / values.length,
    min: sorted[0],
    max: sorted[sorted.length - 1],
    med: percentile(sorted, 50),
    count: values.length,
    percentile: (p) => percentile(sorted, p),
  };
}

function percentile(sorted, p) {
  if (sorted.length === 1) return sorted[0];
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

const EXPRESSION = /^\s*(avg|min|max|med|count|rate|value|p\((\d+(?:\.\d+)?)\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

/** Evaluates one threshold; a metric without samples fails it (a script that measured nothing is broken). */
export function evaluate(expression, stats) {
  const match = EXPRESSION.exec(expression);
  if (!match) throw new Error(`unsupported threshold expression: ${expression}`);
  if (!stats) return { passed: false, actual: 'no samples' };
  const [, name, p, operator, limit] = match;
  const actual = p !== undefined ? stats.percentile?.(Number(p)) : stats[name];
  if (actual === undefined) throw new Error(`threshold ${expression} does not apply to a ${stats.type}`);
  const bound = Number(limit);
  const passed = {
    '<': actual < bound, '<=': actual <= bound, '>': actual > bound, '>=': actual >= bound,
    '==': actual === bound, '===': actual === bound, '!=': actual !== bound,
  }[operator];
  return { passed, actual };
}
