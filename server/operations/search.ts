import { sql } from 'kysely';
import type { Owner } from '../../db/threads.repository.js';
import type { SearchPayload } from '../../protocol/frames.js';
import type { SearchHit } from '../../protocol/results.js';
import type { GatewayServices } from '../handlers/context.js';
import { withTimeBudget } from '../../db/time-budget.js';

/**
 * Full-text search over the caller's own user and assistant messages, best match first, with the
 * thread and a highlighted snippet. `q` uses web-search syntax: words, "quoted phrases", -not, or.
 *
 * Bounded in cost: matches are ranked on the stored tsvector (no re-parsing), snippets
 * (ts_headline, which re-parses the text) are made only for the page returned and only from the
 * first SNIPPET_SOURCE_CHARS of each message, and the whole search runs under its own time budget
 * (SEARCH_TIMEOUT_MS; `unavailable` with a retry hint when it runs out).
 */
export async function searchMessages(services: GatewayServices, owner: Owner, input: SearchPayload) {
  const query = sql<Omit<SearchHit, 'created_at'> & { created_at: Date }>`
    with q as (select websearch_to_tsquery('simple', ${input.q}) as q),
    page as (
      select m.id, m.thread_id, m.role, m.content, m.created_at, t.title, ts_rank(m.search_tsv, q.q)::float8 as rank
      from messages m
      join threads t on t.id = m.thread_id, q
      where t.workspace_id = ${owner.workspaceId} and t.user_id = ${owner.userId}
        and m.role in ('user', 'assistant') and m.search_tsv @@ q.q
      order by rank desc, m.created_at desc
      limit ${input.limit ?? 20}
    )
    select page.thread_id, page.title as thread_title, page.id as message_id, page.role,
      ts_headline('simple', left(page.content, ${SNIPPET_SOURCE_CHARS}), q.q, ${HEADLINE_OPTIONS}) as snippet,
      page.rank, page.created_at
    from page, q
    order by page.rank desc, page.created_at desc`;
  const result = await withTimeBudget(services.db, services.limits.searchTimeoutMs, (trx) => query.execute(trx));
  return {
    results: result.rows.map((row) => ({
      ...row,
      snippet: markSnippet(row.snippet),
      rank: Number(row.rank),
      created_at: new Date(row.created_at).toISOString(),
    })),
  };
}

/** Snippets are cut from at most this much of a message (ts_headline's cost grows with the text). */
const SNIPPET_SOURCE_CHARS = 4_000;

// ts_headline marks matches with two control characters; the snippet is HTML-escaped and only
// then are the marks turned into <mark>, so it is safe to render as HTML whatever the message said
// (a message that itself contains those characters can at worst add a harmless <mark>).
const START = '\u0002';
const STOP = '\u0003';
const HEADLINE_OPTIONS = sql.lit(`StartSel=${START}, StopSel=${STOP}, MaxWords=24, MinWords=8`);

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

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
