import { searchOwnMessages, SNIPPET_MARKS } from '../../db/search.repository.js';
import type { Owner } from '../../db/owner.js';
import type { SearchPayload } from '../../protocol/frames.js';
import type { SearchHit } from '../../protocol/results.js';
import type { GatewayServices } from '../handlers/context.js';

/**
 * Full-text search over the caller's own user and assistant messages, best match first, with the
 * thread and a highlighted snippet (db/search.repository.ts). It runs under its own time budget
 * (SEARCH_TIMEOUT_MS; `unavailable` with a retry hint when it runs out).
 */
export async function searchMessages(services: GatewayServices, owner: Owner, input: SearchPayload): Promise<{ results: SearchHit[] }> {
  // A read replica answers when its replay is current (db/read-routing.ts).
  const rows = await services.routing.latest('search', (db) =>
    searchOwnMessages(db, owner, { q: input.q, limit: input.limit ?? 20 }, services.limits.searchTimeoutMs));
  return {
    results: rows.map((row) => ({
      ...row,
      snippet: markSnippet(row.snippet),
      created_at: new Date(row.created_at).toISOString(),
    })),
  };
}

const { start: START, stop: STOP } = SNIPPET_MARKS;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * The snippet is HTML-escaped and only then are the marks turned into <mark>, so it is safe to
 * render as HTML whatever the message said.
 */
export function markSnippet(raw: string): string {
  return raw
    .split(START)
    .map((part, i) => {
      if (i === 0) return escapeHtml(part.replaceAll(STOP, ''));
      const stop = part.indexOf(STOP);
      const marked = stop < 0 ? part : part.slice(0, stop);
      const rest = stop < 0 ? '' : part.slice(stop + 1).replaceAll(STOP, '');
      return `<mark>${escapeHtml(marked)}</mark>${escapeHtml(rest)}`;
    })
    .join('');
}
