/** From a verified token's claims to the principal it speaks for. */
import type { JWTPayload } from 'jose';
import { AuthError, type Principal } from './principal.js';

/**
 * Workspaces named `personal:<sub>` belong to users whose token has no workspace claim. A claim
 * may never name one: `personal:bob` in a token would otherwise reach bob's threads.
 */
export const PERSONAL_PREFIX = 'personal:';

/**
 * Time claims (`exp`, `nbf`, `iat`) must be whole seconds a Date can hold and an ISO string can
 * print: up to 9999-12-31T23:59:59Z. A signed token with `exp: 9e15` is refused, not trusted to
 * build a Date that throws later.
 */
const LATEST_TIME_CLAIM = 253_402_300_799;

/** Shared by every principal without a role (most of them), rather than an array each. */
const NO_ROLES: string[] = Object.freeze([]) as unknown as string[];

export interface ClaimNames {
  /** JWT_WORKSPACE_CLAIM */
  workspaceClaim: string;
  /** JWT_ROLE_CLAIM. @defaultValue 'role' */
  roleClaim?: string;
}

/** Workspace ids from tokens' claims, one string per workspace instead of one per token (a socket holds its principal). */
const workspaceIds = new Map<string, string>();
const MAX_SHARED_WORKSPACE_IDS = 4096;

function sharedWorkspaceId(claim: string): string {
  const known = workspaceIds.get(claim);
  if (known !== undefined) return known;
  // A bound, not a cache policy: past it, sockets simply hold strings of their own again.
  if (workspaceIds.size >= MAX_SHARED_WORKSPACE_IDS) workspaceIds.clear();
  workspaceIds.set(claim, claim);
  return claim;
}

/** The principal of a token whose signature, `iss`, `aud` and `exp` jose has checked. */
export function principalFrom(payload: JWTPayload, names: ClaimNames): Principal {
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    const value = payload[claim];
    if (value === undefined && claim !== 'exp') continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > LATEST_TIME_CLAIM) {
      throw new AuthError('unauthenticated', `The token's ${claim} claim must be a time in seconds between 1970 and 9999.`);
    }
  }
  if (typeof payload.sub !== 'string' || payload.sub === '') {
    throw new AuthError('unauthenticated', "The token's sub claim must be a non-empty string.");
  }
  const claim = payload[names.workspaceClaim];
  if (typeof claim === 'string' && claim.startsWith(PERSONAL_PREFIX)) {
    throw new AuthError(
      'unauthenticated',
      `The token's ${names.workspaceClaim} claim must not start with '${PERSONAL_PREFIX}': those workspaces belong to users whose token has no ${names.workspaceClaim} claim.`,
    );
  }
  // No workspace claim: the user gets a personal workspace named after them.
  const workspaceId = typeof claim === 'string' && claim !== '' ? sharedWorkspaceId(claim) : `${PERSONAL_PREFIX}${payload.sub}`;
  const role = payload[names.roleClaim ?? 'role'];
  const roles = typeof role === 'string' ? [role] : Array.isArray(role) ? role.filter((r): r is string => typeof r === 'string') : NO_ROLES;
  return new TokenPrincipal(payload.sub, workspaceId, payload.exp!, roles);
}

/**
 * A token's principal as every socket holds it for its lifetime: `exp` is kept as the token's
 * number of seconds and `expiresAt` made when read, since a Date held per socket costs more than
 * the rest of the principal.
 */
class TokenPrincipal implements Principal {
  constructor(
    readonly userId: string,
    readonly workspaceId: string,
    /** The token's `exp` claim (seconds). */
    readonly exp: number,
    readonly roles: string[],
  ) {}

  get expiresAt(): Date {
    return new Date(this.exp * 1000);
  }
}
