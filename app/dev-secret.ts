import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The development HS256 secret used when neither JWT_SECRET nor JWKS_URL is set: generated once
 * into DATA_DIR (mode 0600) and reused on later starts so printed tokens stay valid.
 */
export async function loadOrCreateDevSecret(dataDir: string): Promise<{ secret: string; created: boolean; file: string }> {
  const file = path.join(dataDir, 'dev-jwt-secret');
  try {
    const secret = (await readFile(file, 'utf8')).trim();
    if (secret.length >= 32) return { secret, created: false, file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  // 'wx' fails if another process created it first; then read theirs.
  try {
    await writeFile(file, secret + '\n', { mode: 0o600, flag: 'wx' });
    return { secret, created: true, file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { secret: (await readFile(file, 'utf8')).trim(), created: false, file };
  }
}
