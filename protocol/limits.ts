/** Limits that are part of the contract. The gateway may enforce lower ones from config. */
export const LIMITS = {
  idLength: 128,
  contentChars: 32_000,
  tokenChars: 8_192,
} as const;
