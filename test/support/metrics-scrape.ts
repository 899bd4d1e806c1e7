/** Reads a process's `/metrics` with a real Prometheus text parser, and sums its series. */
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';

export interface Scrape {
  /** The metric families as exposed (HELP, TYPE, samples). */
  families: Map<string, PrometheusFamily>;
  /**
   * Every sample line as its own untyped series (`x_count`, `x_sum`, `x_bucket` with their labels).
   * The parser folds the series of a labelled histogram into one, losing their labels, so sample
   * values are read from a second parse of the same text without its (optional) TYPE lines.
   */
  samples: Map<string, PrometheusFamily>;
}

export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain')) throw new Error(`GET ${url}: content-type ${type}`);
  const text = await response.text();
  // Without TYPE lines a name that recurs further down (each histogram series has its own
  // bucket/sum/count run) starts a new family each time: merged here.
  const byName = (families: PrometheusFamily[]) => {
    const map = new Map<string, PrometheusFamily>();
    for (const family of families) {
      const known = map.get(family.name);
      if (known) known.metrics.push(...family.metrics);
      else map.set(family.name, { ...family, metrics: [...family.metrics] });
    }
    return map;
  };
  return {
    families: byName(parsePrometheusTextFormat(text)),
    samples: byName(parsePrometheusTextFormat(text.split('\n').filter((line) => !line.startsWith('# TYPE ')).join('\n'))),
  };
}

/**
 * The sum of a family's values (counters, gauges) or observation counts (histograms) over the
 * series whose labels include `labels`; 0 when there is no such series yet.
 */
export function total(metrics: Scrape, name: string, labels: Record<string, string> = {}): number {
  const type = metrics.families.get(name)?.type;
  const series = metrics.samples.get(type === 'HISTOGRAM' || type === 'SUMMARY' ? `${name}_count` : name);
  if (!series) return 0;
  return series.metrics
    .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels?.[key] === value))
    .reduce((sum, sample) => sum + Number(sample.value ?? 0), 0);
}
