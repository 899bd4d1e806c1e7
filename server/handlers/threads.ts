import { createThread, deleteThread, getThread, listThreads, threadHistory, updateThread } from '../operations/threads.js';
import { searchMessages } from '../operations/search.js';
import type { ClientFrameType, ClientPayloads } from '../../protocol/frames.js';
import type { FrameHandler, GatewayServices } from './context.js';
import type { Owner } from '../../db/owner.js';

/** A frame whose answer is the operation's result as the ack payload; the operation takes that frame's payload. */
function ackWith<T extends ClientFrameType>(
  operation: (services: GatewayServices, owner: Owner, input: ClientPayloads[T]) => Promise<object>,
): FrameHandler<T> {
  return async (connection, frame, services) => {
    const result = await operation(services, connection.owner, frame.payload);
    // The results are interfaces (protocol/results.ts), which TypeScript does not let stand for the
    // ack's open `Record<string, unknown>`; a spread is a plain object with the same fields.
    connection.sendFrame('ack', { ...result }, frame.id);
  };
}

export const threadCreate = ackWith<'thread.create'>(createThread);
export const threadList = ackWith<'thread.list'>(listThreads);
export const threadGet = ackWith<'thread.get'>(getThread);
export const threadHistoryHandler = ackWith<'thread.history'>(threadHistory);
export const threadUpdate = ackWith<'thread.update'>(updateThread);
export const threadDelete = ackWith<'thread.delete'>(deleteThread);
export const search = ackWith<'search'>(searchMessages);
