/** What the orchestrator and its child processes (the driver, the raw turn's gateway and worker) say to each other over IPC. */
import type { Summary } from '../stats.js';

export interface DriverConfig {
  scenario: 'turns' | 'paced' | 'idle' | 'storm';
  /** WebSocket URLs; sockets are spread over them round-robin. */
  gateways: string[];
  secret: string;
  /** The run's database, read after the window for the stored last_seq of every thread. */
  databaseUrl: string;
  /** Where the threads' last_seq is: the server's `threads`, or the raw turn's `raw_threads`. */
  threadsTable: 'threads' | 'raw_threads';
  clients: number;
  /** Turns per client. */
  turns: number;
  /**
   * Turns per thread: a client with more turns than this moves on to a new thread (made, with its
   * followers subscribed, before the window), so every thread's history grows as in the measured run.
   */
  turnsPerThread?: number;
  /** No turn starts after this many seconds of the window (the raw turn's runs are bounded in time). */
  windowLimitS?: number;
  words: number;
  delayMs: number;
  followers: number;
  /** `users`: how many distinct users (each with its token) the sockets are spread over; 0: one per socket. */
  idle: { sockets: number; step: number; users: number };
  storm: { followers: number; threads: number; words: number; delayMs: number };
  paced: { ratePerS: number; durationS: number };
  /** Epoch ms the run started, and its bound in seconds: every wait gives up by then. */
  startedAt: number;
  deadlineS: number;
}

export interface Check {
  name: string;
  ok: number;
  total: number;
}

export interface DriverResult {
  scenario: string;
  /** The measured window (between the start and end marks). */
  windowS: number;
  connectS: number;
  sockets: number;
  turns: number;
  /** Thread events stored (the sum of the threads' last_seq). */
  events: number;
  /** Thread events received, over all sockets. */
  eventsReceived: number;
  /** Mean size of a thread event's frame, in characters. */
  meanEventChars: number;
  latencyMs: Record<string, Summary>;
  /** How the sockets sat on the gateways: threads with sockets on more than one, resumes on another gateway than the drop. */
  spread?: Record<string, number>;
  storm?: { dropped: number; midStream: number; allCaughtUpS: number; allCompleteS: number };
  checks: Check[];
  problems: string[];
  problemCount: number;
}

export type ToDriver = { type: 'run'; config: DriverConfig } | { type: 'go' };
export type FromDriver =
  | { type: 'mark'; name: 'start' | 'end' }
  | { type: 'idle-step'; sockets: number }
  | { type: 'result'; result: DriverResult }
  | { type: 'failed'; error: string };

/** What the raw turn's gateway and worker tell the orchestrator once they can take work. */
export type FromRawPart = { type: 'ready'; port?: number } | { type: 'failed'; error: string };
