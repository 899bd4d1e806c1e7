import { randomBytes } from 'node:crypto';

/** Opaque, URL-safe ids with a readable prefix (`t_`, `m_`, `run_`, `c_` connections, `lp_` long-polls, ...). 128 random bits. */
export function newId(prefix: 't' | 'm' | 'run' | 'c' | 'ag' | 'lp'): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}
