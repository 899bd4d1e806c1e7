import type { HandlerTable } from './context.js';
import { messageSend } from './message-send.js';
import { threadSubscribe, threadUnsubscribe } from './thread-subscribe.js';
import { ping } from './ping.js';
import { authRefresh } from './auth-refresh.js';
import { runCancel } from './run-cancel.js';
import { toolApprove } from './tool-approve.js';
import { search, threadCreate, threadDelete, threadGet, threadHistoryHandler, threadList, threadUpdate } from './threads.js';

/** Frame type → handler. A type missing here cannot pass validation either. */
export const handlers: HandlerTable = {
  'message.send': messageSend,
  'thread.subscribe': threadSubscribe,
  'thread.unsubscribe': threadUnsubscribe,
  'run.cancel': runCancel,
  'tool.approve': toolApprove,
  'auth.refresh': authRefresh,
  ping,
  'thread.create': threadCreate,
  'thread.list': threadList,
  'thread.get': threadGet,
  'thread.history': threadHistoryHandler,
  'thread.update': threadUpdate,
  'thread.delete': threadDelete,
  search,
};
