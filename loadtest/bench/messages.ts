/** What the orchestrator and its child processes (the driver, the ceiling) say to each other over IPC. */
import type { Summary } from '../stats.js';

export interface DriverConfig {
  scenario: 'turns' | 'paced' | 'idle' | 'storm';
  /** WebSocket URLs; sockets are spread over them round-robin. */
  gateways: string[];
  secret: string;
  /** The run's database, read after the window for the stored last_seq of every thread. */
  databaseUrl: string;
  clients: number;
  turns: number;
  words: number;
  delayMs: number;
  followers: number;
  idle: { sockets: number; step: number };
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

export interface CeilingConfig {
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  /** Turns to run, `concurrency` at a time (as many as the run had clients). */
  turns: number;
  concurrency: number;
  /** Per turn, as the measured run emitted: events (rows and publishes) and their mean size. */
  eventsPerTurn: number;
  eventBytes: number;
  deadlineS: number;
}

export interface CeilingResult {
  turns: number;
  windowS: number;
  rows: number;
  publishes: number;
  received: number;
}

export type ToCeiling = { type: 'run'; config: CeilingConfig } | { type: 'go' };
export type FromCeiling = { type: 'mark'; name: 'start' | 'end' } | { type: 'result'; result: CeilingResult } | { type: 'failed'; error: string };
