/** jose's failures, told apart: what is wrong with the token, and what is wrong with the key set. */
import { errors } from 'jose';
import { AuthError } from './principal.js';

/** The key set could not be had (timeout, refused, not a key set): nothing is wrong with the token. */
export function isKeySetFailure(error: unknown): boolean {
  return error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || isFetchFailure(error);
}

export function toAuthError(error: unknown): AuthError {
  if (error instanceof AuthError) return error;
  if (error instanceof errors.JWTExpired) return new AuthError('token_expired', 'The token has expired.');
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new AuthError('unauthenticated', `The token's ${error.claim} claim is not valid (${error.reason}).`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError('unauthenticated', "The token's signature does not verify.");
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new AuthError('unauthenticated', "The token's algorithm is not allowed.");
  if (error instanceof errors.JWKSNoMatchingKey) return new AuthError('unauthenticated', 'No key in the key set matches the token.');
  if (isKeySetFailure(error)) {
    return new AuthError('unavailable', 'The key set that verifies tokens cannot be fetched right now; retry with the same token shortly.');
  }
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) {
    return new AuthError('unauthenticated', 'The token is not a well-formed JWT.');
  }
  return new AuthError('unauthenticated', 'The token could not be verified.');
}

/** A failed fetch of the key set: undici's `TypeError('fetch failed')`, a refused or reset connection, or a non-2xx answer. */
function isFetchFailure(error: unknown): boolean {
  if (error instanceof errors.JOSEError) return error.code === 'ERR_JOSE_GENERIC' && /response|fetch/i.test(error.message);
  const code = (error as { cause?: { code?: string }; code?: string })?.cause?.code ?? (error as { code?: string })?.code;
  return (error instanceof TypeError && /fetch failed/i.test(error.message)) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN'].includes(code ?? '');
}
