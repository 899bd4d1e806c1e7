/** Runs: one run's state, and the answer to the tool call a waiting run waits on (the REST mirror of tool.approve). */
import { requestSchemas, resultSchemas } from '../../protocol/resources.js';
import { getRun } from '../operations/runs.js';
import { answerToolWait } from '../operations/tool-waits.js';
import { json, ok, refusal } from '../http/route.js';
import { owner, route } from './deps.js';
import { idPath } from './params.js';

export const runRoutes = [
  route({
    method: 'get',
    path: '/v1/runs/:id',
    operationId: 'getRun',
    tags: ['runs'],
    summary: 'Get a run',
    description:
      'One of the caller\'s runs: its status (`waiting` while it waits for an approval or a client tool\'s result, holding no ' +
      'worker) and `pending`, the tool calls it waits on.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    responses: { 200: json(resultSchemas.run, 'The run.'), 404: refusal('No such run on one of your threads.') },
    handler: async ({ principal, params }, { services }) => ok(await getRun(services, owner(principal), params.id)),
  }),
  route({
    method: 'post',
    path: '/v1/runs/:id/approvals',
    operationId: 'approveToolCall',
    tags: ['runs'],
    summary: 'Approve or deny a tool call',
    description:
      'Answers the `approval_requested` of a waiting run (`tool.approve` over the WebSocket): approved, the tool runs; denied, ' +
      'the model is told so (with `reason`) and goes on. The run resumes on a worker; `approval_resolved` and the rest of the ' +
      'turn follow as thread events. Only the thread\'s owner may answer, once.',
    auth: 'bearer',
    cors: true,
    params: idPath,
    body: { schema: requestSchemas['run.approve'], description: '`tool.approve` without `run_id` (it is in the path).' },
    responses: {
      200: json(resultSchemas.toolAnswer, 'The answer is stored and the run resumes.'),
      404: refusal('No such tool call waits on one of your runs.'),
      409: refusal('The call was already answered, expired, or cancelled with its run (`already_answered`): the first answer stands.'),
    },
    handler: async ({ principal, params, body }, { services }) => {
      const answer = body.reason === undefined ? { approved: body.approved } : { approved: body.approved, reason: body.reason };
      return ok(await answerToolWait(services, owner(principal), { run_id: params.id, tool_call_id: body.tool_call_id, answer }));
    },
  }),
];
