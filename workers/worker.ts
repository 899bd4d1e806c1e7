/**
 * A worker process's part: consume turns from the queue, listen for cancellations, and sweep
 * queued runs whose job was lost.
 */
import type OpenAI from 'openai';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { strandedRuns } from '../db/runs.repository.js';
import type { Database } from '../db/schema.js';
import type { TurnQueue } from '../queue/turn-queue.js';
import { RUN_CANCEL_CHANNEL } from '../broker/index.js';
import { createTurnProcessor } from './turn-processor.js';
import type { ToolRegistry } from './tools/registry.js';

export interface WorkerOptions {
  db: Kysely<Database>;
  broker: Broker;
  queue: TurnQueue;
  llm: OpenAI;
  model: string;
  contextTokens?: number;
  /** Per tool call. @defaultValue 10000 */
  toolTimeoutMs?: number;
  /** Consecutive provider failures that open the LLM circuit breaker. @defaultValue 5 */
  breakerFailures?: number;
  /** How long an open breaker fails turns fast. @defaultValue 30000 */
  breakerCooldownMs?: number;
  tools: ToolRegistry;
  concurrency: number;
  log: Logger;
  /** How often to look for stranded queued runs. @defaultValue 5000 */
  sweepIntervalMs?: number;
  /** A queued run this old with nothing running on its thread is re-enqueued. @defaultValue 10000 */
  strandedAfterMs?: number;
  /** Re-enqueue every stranded queued run at once on start (a single node after a restart). */
  sweepOnStart?: boolean;
}

export interface TurnWorker {
  /** Runs in flight in this process. */
  activeCount(): number;
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<TurnWorker> {
  const { log } = options;
  const activeRuns = new Map<string, AbortController>();
  const unsubscribeCancel = await options.broker.subscribe(RUN_CANCEL_CHANNEL, (runId) => {
    activeRuns.get(runId)?.abort(new Error('cancelled by the user'));
  });
  const processor = createTurnProcessor({ ...options, activeRuns });
  await options.queue.startWorker(processor, options.concurrency);

  const sweep = async (olderThanMs = options.strandedAfterMs ?? 10_000) => {
    try {
      for (const run of await strandedRuns(options.db, olderThanMs)) {
        log.info({ run_id: run.id, thread_id: run.thread_id }, 're-enqueuing a stranded run');
        await options.queue.enqueue({ runId: run.id, threadId: run.thread_id }, { wake: true });
      }
    } catch (error) {
      log.warn({ err: error }, 'sweep failed; will retry');
    }
  };
  if (options.sweepOnStart) await sweep(0);
  const timer = setInterval(() => void sweep(), options.sweepIntervalMs ?? 5_000);
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    activeCount: () => activeRuns.size,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        await unsubscribeCancel().catch(() => {});
      })();
      return closing;
    },
  };
}
