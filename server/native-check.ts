import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * The uWebSockets.js package falls back to a slow `ws`-based shim, where topic publish does nothing
 * and upgrades throw, when it has no binary for this Node version. Refuse to run on the shim.
 * Returns null when the native binary is loaded, else the reason.
 */
export function checkNativeUws(): string | null {
  if (process.env.UWS_USE_FALLBACK) {
    return 'UWS_USE_FALLBACK is set: unset it; this server needs the native uWebSockets.js binary.';
  }
  require('uWebSockets.js');
  const native = Object.keys(require.cache).some((key) => /uws_[a-z0-9]+_[a-z0-9]+_\d+\.node$/.test(key));
  if (native) return null;
  return (
    `uWebSockets.js has no native binary for Node ${process.version} (ABI ${process.versions.modules}) on ` +
    `${process.platform}/${process.arch}. Use Node 18, 20 or 16 (ABI 108, 115 or 93) on linux, darwin or win32 x64/arm64.`
  );
}
