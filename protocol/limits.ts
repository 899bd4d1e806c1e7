/** Limits that are part of the contract. The gateway may enforce lower ones from config. */
export const LIMITS = {
  idLength: 128,
  contentChars: 32_000,
  /** A token's length, the same on every path: the upgrade, tickets, REST and auth.refresh. */
  tokenChars: 8_192,
  /** Sequence numbers are 32-bit in the store; a larger one can never exist. */
  maxSeq: 2 ** 31 - 1,
} as const;
