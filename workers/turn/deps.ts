/** What a turn needs from its worker process: the backends, the model, the tools and the limits. */
import type OpenAI from 'openai';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import type { Database } from '../../db/schema.js';
import type { EventLog } from '../../events/event-log.js';
import type { TurnQueue } from '../../queue/turn-queue.js';
import type { ActiveRuns } from '../active-runs.js';
import type { CircuitBreaker } from '../circuit-breaker.js';
import type { ToolRegistry } from '../tools/registry.js';
import type { ToolGate } from './tool-gate.js';

export interface TurnDeps {
  db: Kysely<Database>;
  broker: Broker;
  /** The process's event log: every event of a turn is appended (and published) through it. */
  events: EventLog;
  queue: TurnQueue;
  llm: OpenAI;
  model: string;
  /** Token budget of the history sent with each turn. @defaultValue DEFAULT_CONTEXT_TOKENS */
  contextTokens?: number;
  tools: ToolRegistry;
  log: Logger;
  /** The runs this worker holds (run.cancel reaches every worker; heartbeats; shutdown). */
  activeRuns: ActiveRuns;
  /** How long a run's writes are retried while the database is unreachable. @defaultValue 30000 */
  writeRetryMs?: number;
  /** Deadline of one tool call; a tool still running then ends as an error result. @defaultValue 10000 */
  toolTimeoutMs?: number;
  /** Consecutive provider failures that open the LLM circuit breaker. @defaultValue 5 */
  breakerFailures?: number;
  /** How long an open breaker fails turns fast before one trial call. @defaultValue 30000 */
  breakerCooldownMs?: number;
  /**
   * Asked before each proposed tool call runs; 'stop' parks the run until a later job resumes it
   * (see tool-gate.ts). @defaultValue every call runs
   */
  toolGate?: ToolGate;
}

export const DEFAULT_TOOL_TIMEOUT_MS = 10_000;

/** TurnDeps plus what the processor builds once: one breaker per processor, so per worker process. */
export interface ProcessorDeps extends TurnDeps {
  breaker: CircuitBreaker;
  toolTimeoutMs: number;
}
