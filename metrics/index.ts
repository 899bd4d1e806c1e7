/** Metrics of this process (prom-client): the one-line recording calls, the registry, the worker's endpoint. */
export { metrics, statementKind, type StatementKind, type TurnMetricOutcome } from './record.js';
export { registry, renderMetrics, startDefaultMetrics, METRICS_CONTENT_TYPE } from './registry.js';
export { startMetricsServer, type MetricsServer } from './http-server.js';
export { observeQuery } from './kysely-log.js';
