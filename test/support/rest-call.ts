/**
 * A timed REST call for the /v1 mirror (cancel, busy and long-poll suites): every call has its own
 * deadline (uvu has no timeouts) and reports how long it took, for long-poll timing assertions.
 */
import type { RunningNode } from '../../server/node.js';

export interface TimedResponse {
  status: number;
  body: any;
  /** Wall-clock time from sending the request to reading the whole body. */
  ms: number;
}

export function restBase(node: RunningNode): string {
  return `http://127.0.0.1:${node.gateway!.port}`;
}

export async function rest(
  base: string,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  options: { token?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<TimedResponse> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const started = performance.now();
  const res = await fetch(base + path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const text = await res.text();
  const ms = performance.now() - started;
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text for the assertion message
  }
  return { status: res.status, body, ms };
}
