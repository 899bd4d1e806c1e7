import { sql } from 'kysely';
import type { Owner } from '../../db/threads.repository.js';
import type { SearchPayload } from '../../protocol/frames.js';
import type { GatewayServices } from '../handlers/context.js';

/**
 * Full-text search over the caller's own user and assistant messages, best match first, with the
 * thread and a highlighted snippet. `q` uses web-search syntax: words, "quoted phrases", -not, or.
 */
export async function searchMessages(services: GatewayServices, owner: Owner, input: SearchPayload) {
  const result = await sql<{
    thread_id: string;
    thread_title: string | null;
    message_id: string;
    role: 'user' | 'assistant';
    snippet: string;
    rank: number;
    created_at: Date;
  }>`
    select m.thread_id, t.title as thread_title, m.id as message_id, m.role,
      ts_headline('simple', m.content, q, ${HEADLINE_OPTIONS}) as snippet,
      ts_rank(m.search_tsv, q)::float8 as rank, m.created_at
    from messages m
    join threads t on t.id = m.thread_id,
      websearch_to_tsquery('simple', ${input.q}) q
    where t.workspace_id = ${owner.workspaceId} and t.user_id = ${owner.userId}
      and m.role in ('user', 'assistant') and m.search_tsv @@ q
    order by rank desc, m.created_at desc
    limit ${input.limit ?? 20}`.execute(services.db);
  return {
    results: result.rows.map((row) => ({
      ...row,
      snippet: markSnippet(row.snippet),
      rank: Number(row.rank),
      created_at: new Date(row.created_at).toISOString(),
    })),
  };
}

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
