import { CloseCodes } from '../../protocol/codes.js';
import { AuthError } from '../auth.js';
import { type FrameHandler } from './context.js';
import { RequestError } from '../errors.js';

/**
 * Extends the connection with a fresh token for the same user and workspace. A token for someone
 * else closes the socket with 4003: a connection never changes identity.
 */
export const authRefresh: FrameHandler<'auth.refresh'> = async (connection, frame, services) => {
  let principal;
  try {
    principal = await services.verifyToken(frame.payload.token);
  } catch (error) {
    if (error instanceof AuthError) throw new RequestError(error.code, error.message);
    throw error;
  }
  const { userId, workspaceId } = connection.principal;
  if (principal.userId !== userId || principal.workspaceId !== workspaceId) {
    connection.sendError(frame.id, 'forbidden', 'The new token is for a different user or workspace.');
    connection.close(CloseCodes.forbidden, 'token for another identity');
    return;
  }
  connection.token.extendUntil(principal.expiresAt);
  connection.sendFrame('ack', { token_expires_at: principal.expiresAt.toISOString() }, frame.id);
};
