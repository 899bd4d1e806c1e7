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
      ts_headline('simple', m.content, q, 'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8') as snippet,
      ts_rank(m.search_tsv, q)::float8 as rank, m.created_at
    from messages m
    join threads t on t.id = m.thread_id,
      websearch_to_tsquery('simple', ${input.q}) q
    where t.workspace_id = ${owner.workspaceId} and t.user_id = ${owner.userId}
      and m.role in ('user', 'assistant') and m.search_tsv @@ q
    order by rank desc, m.created_at desc
    limit ${input.limit ?? 20}`.execute(services.db);
  return {
    results: result.rows.map((row) => ({ ...row, rank: Number(row.rank), created_at: new Date(row.created_at).toISOString() })),
  };
}
