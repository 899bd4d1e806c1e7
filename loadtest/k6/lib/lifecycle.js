// What a turn on the wire must look like (README, "Wire protocol v1"): the run's events in
// lifecycle order, and the thread's seqs without a gap.

/**
 * Whether the run's event types follow agent_started, agent_thinking, tool_executing/tool_completed
 * pairs and message_deltas, and end with exactly one agent_completed.
 * @param {Array<{ type: string, payload: Record<string, any> }>} events the run's events, in arrival order
 * @returns {string | undefined} what is wrong, or undefined
 */
export function lifecycleProblem(events) {
  const types = events.map((e) => e.type);
  if (types[0] !== 'agent_started') return `first event is ${types[0]}, not agent_started`;
  if (types[1] !== 'agent_thinking') return `second event is ${types[1]}, not agent_thinking`;
  if (types[types.length - 1] !== 'agent_completed') return `last event is ${types[types.length - 1]}`;
  if (types.filter((t) => t === 'agent_completed').length !== 1) return 'more than one agent_completed';
  /** @type {Set<string>} */
  const open = new Set();
  for (const event of events.slice(2, -1)) {
    if (event.type === 'tool_executing') open.add(event.payload.tool_call_id);
    else if (event.type === 'tool_completed') {
      if (!open.delete(event.payload.tool_call_id)) return `tool_completed without tool_executing (${event.payload.tool_call_id})`;
    } else if (event.type !== 'message_delta' && event.type !== 'agent_thinking') return `unexpected ${event.type} inside the run`;
  }
  if (open.size > 0) return 'a tool_executing without its tool_completed';
  const text = events.filter((e) => e.type === 'message_delta').map((e) => e.payload.delta).join('');
  const final = events[events.length - 1].payload.message?.content;
  if (events[events.length - 1].payload.status === 'completed' && text !== final) return 'the deltas do not join to the final message';
  return undefined;
}

/**
 * Whether seqs go up by one from `from + 1`.
 * @param {number[]} seqs
 * @param {number} from the seq before the first one
 */
export function gapFree(seqs, from) {
  return seqs.every((seq, i) => seq === from + i + 1);
}
