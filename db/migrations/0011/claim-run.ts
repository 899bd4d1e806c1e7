/**
 * `claim_run(...)` as migration 0010 made it (../0010/claim-run.ts; what it does and why:
 * ../0004/runs.ts), returning `json` instead of `jsonb`. Its answer is read once, by the worker,
 * as text: the jsonb it built was taken apart again at once, and building it was most of the
 * function's cost. Every object is built as json text instead (json_build_object, json_agg,
 * to_json), and the thread's messages are aggregated as rows (json_agg of the row: its columns are
 * the keys), not through a jsonb_build_object per message, which looks up the type of each of its
 * nine values on every call. The answer's keys and values are the same. Written as these edits of
 * 0010's frozen text, and so frozen with migration 0011.
 */
import { CLAIM_RUN_FUNCTION as CLAIM_RUN_0010 } from '../0010/claim-run.js';
import { edited } from '../edited.js';

export const CLAIM_RUN_FUNCTION = edited('0011', CLAIM_RUN_0010, [
  ['p_from_job text)\nreturns jsonb\n', 'p_from_job text)\nreturns json\n'],
  ['  v_opened jsonb;\n  v_messages jsonb;\n', '  v_opened json;\n  v_messages json;\n'],
  ["return jsonb_build_object('kind', 'gone');", "return json_build_object('kind', 'gone');", 3],
  ["return jsonb_build_object('kind', 'gone', 'status', v_run.status);", "return json_build_object('kind', 'gone', 'status', v_run.status);"],
  ["return jsonb_build_object('kind', 'wait');", "return json_build_object('kind', 'wait');"],
  [
    "select coalesce(jsonb_agg(jsonb_build_object('seq', a.seq, 'type', v_opening->a.idx->>'type', 'payload', a.payload) order by a.idx), '[]'::jsonb)",
    "select coalesce(json_agg(json_build_object('seq', a.seq, 'type', v_opening->a.idx->>'type', 'payload', a.payload) order by a.idx), '[]'::json)",
  ],
  [
    `    select coalesce(jsonb_agg(jsonb_build_object(
        'id', m.id, 'thread_id', m.thread_id, 'run_id', m.run_id, 'role', m.role, 'content', m.content,
        'tool_calls', m.tool_calls, 'tool_call_id', m.tool_call_id, 'client_message_id', m.client_message_id,
        'created_at', m.created_at) order by m.created_at, m.id), '[]'::jsonb)
    into v_messages
    from messages m where m.thread_id = v_thread.id;`,
    `    select coalesce(json_agg(m order by m.created_at, m.id), '[]'::json)
    into v_messages
    from (
      select m.id, m.thread_id, m.run_id, m.role, m.content, m.tool_calls, m.tool_call_id, m.client_message_id, m.created_at
      from messages m where m.thread_id = v_thread.id
    ) m;`,
  ],
  [
    `  return jsonb_build_object('kind', 'claimed', 'restarted', v_taking_over,
    'run', to_jsonb(v_run), 'thread', to_jsonb(v_thread), 'agent', to_jsonb(v_agent),`,
    `  return json_build_object('kind', 'claimed', 'restarted', v_taking_over,
    'run', to_json(v_run), 'thread', to_json(v_thread), 'agent', to_json(v_agent),`,
  ],
]);
