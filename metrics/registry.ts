/**
 * The process's one metrics registry. Every metric of this process is registered here (see
 * ./definitions.ts), and prom-client's default metrics (process CPU and RSS, heap, event-loop
 * delay, GC) are added once per process with the same `convo_` prefix.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

export const PREFIX = 'convo_';

export const registry = new Registry();

let defaultsStarted = false;

/**
 * Starts prom-client's default metrics on the registry. Idempotent: several nodes in one process
 * (tests) share one registry, as they share one process. The event-loop monitor samples every
 * 10 ms; coarser sampling would miss the short stalls that matter for socket latency.
 */
export function startDefaultMetrics(): void {
  if (defaultsStarted) return;
  defaultsStarted = true;
  collectDefaultMetrics({ register: registry, prefix: PREFIX, eventLoopMonitoringPrecision: 10 });
}

/** The Prometheus text exposition of every metric of this process. */
export function renderMetrics(): Promise<string> {
  return registry.metrics();
}

/** The Content-Type of that text (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE = registry.contentType;
