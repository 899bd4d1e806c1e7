/**
 * How a failure of a backing service (Postgres, Redis) is told from a bug, for both roles: the
 * gateway answers `unavailable` with a retry hint, a worker retries its write or its turn.
 */

/** Errors that mean a dependency is down or the connection to it dropped (retryable), not a bug. */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '08006', '08001', '08003'].includes(code ?? '') ||
    /Connection terminated|timeout exceeded when trying to connect|Connection is closed/i.test(String((error as Error)?.message))
  );
}

/** A statement cancelled by its time budget (statement_timeout, SQLSTATE 57014). */
export function isTimeoutError(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === '57014';
}
