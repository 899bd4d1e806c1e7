import pino, { type Logger } from 'pino';

/** The one root logger. Tokens and credentials are redacted wherever they would appear. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'access_token', '*.access_token', 'payload.token'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
