import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import type { EventLog } from '../../events/event-log.js';
import type { Database } from '../../db/schema.js';
import type { ReadRouting } from '../../db/read-routing.js';
import type { TurnQueue } from '../../queue/turn-queue.js';
import type { ClientFrame, ClientFrameType } from '../../protocol/frames.js';
import type { Connection } from '../ws/connection.js';
import type { ThreadFanout } from '../fanout/thread-fanout.js';
import type { BatchedReads } from '../batched-reads.js';
import type { TokenVerifier } from '../auth.js';
import type { TicketStore } from '../tickets/index.js';
import type { RateLimiter } from '../rate-limits/index.js';

/** What every frame handler may use. */
export interface GatewayServices {
  db: Kysely<Database>;
  broker: Broker;
  /** Publishes what an operation stored (the process's one event log). */
  events: EventLog;
  queue: TurnQueue;
  fanout: ThreadFanout;
  /** Owner checks and replay reads, batched per event-loop turn (a reconnect storm's many). */
  reads: BatchedReads;
  /**
   * Clients' reads that a read replica may answer (history, long-poll, lists, search; replays go
   * through `reads`): to the replica when it is not behind what the read must see, else the primary.
   */
  routing: ReadRouting;
  verifyToken: TokenVerifier;
  log: Logger;
  /** Tool names the workers know (agents may only name these). */
  toolNames: string[];
  /** The role claim value that may manage agents. */
  adminRole: string;
  /** Single-use connection tickets (POST /v1/ws-ticket, then ?ticket= on the upgrade). */
  tickets: TicketStore;
  /** Messages per minute and open sockets per user (shared through Redis when there is one). */
  rateLimits: RateLimiter;
  /** The limits handlers enforce themselves. */
  limits: {
    /** MAX_SUBSCRIPTIONS_PER_CONNECTION */
    maxSubscriptions: number;
    /** SEARCH_TIMEOUT_MS (Postgres statement_timeout of a search). */
    searchTimeoutMs: number;
  };
}

export type FrameHandler<T extends ClientFrameType> = (
  connection: Connection,
  frame: ClientFrame<T>,
  services: GatewayServices,
) => Promise<void> | void;

export type HandlerTable = { [T in ClientFrameType]: FrameHandler<T> };
