import { createThread, deleteThread, getThread, listThreads, threadHistory, updateThread } from '../operations/threads.js';
import { searchMessages } from '../operations/search.js';
import type { ClientFrameType } from '../../protocol/frames.js';
import type { FrameHandler, GatewayServices } from './context.js';
import type { Owner } from '../../db/owner.js';

/** A frame whose answer is the operation's result as the ack payload. */
function ackWith<T extends ClientFrameType>(
  operation: (services: GatewayServices, owner: Owner, input: any) => Promise<object>,
): FrameHandler<T> {
  return async (connection, frame, services) => {
    connection.sendFrame('ack', await operation(services, connection.owner, frame.payload), frame.id);
  };
}

export const threadCreate = ackWith<'thread.create'>(createThread);
export const threadList = ackWith<'thread.list'>(listThreads);
export const threadGet = ackWith<'thread.get'>(getThread);
export const threadHistoryHandler = ackWith<'thread.history'>(threadHistory);
export const threadUpdate = ackWith<'thread.update'>(updateThread);
export const threadDelete = ackWith<'thread.delete'>(deleteThread);
export const search = ackWith<'search'>(searchMessages);
