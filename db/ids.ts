import { randomBytes } from 'node:crypto';

/** Opaque, URL-safe ids with a readable prefix (`t_`, `m_`, `run_`, `c_` connections, `lp_` long-polls, ...). 128 random bits. */
export function newId(prefix: 't' | 'm' | 'run' | 'c' | 'ag' | 'lp'): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}

/**
 * The id of one event-log write (migration 0007): its creation time first (milliseconds, base 36,
 * fixed width), so ids sort by time and old ones are pruned by a range on the primary key.
 */
export function newWriteId(now = Date.now()): string {
  return `${writeIdTime(now)}_${randomBytes(12).toString('base64url')}`;
}

/** The time part of write ids made at `ms`: every id made before `ms` sorts below it. */
export function writeIdTime(ms: number): string {
  return Math.max(0, Math.floor(ms)).toString(36).padStart(9, '0');
}
