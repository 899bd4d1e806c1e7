import type { FrameHandler } from './context.js';

export const ping: FrameHandler<'ping'> = (connection, frame) => {
  connection.sendFrame('pong', {}, frame.id);
};
