/**
 * What a build made, from what: a manifest beside the outputs (`dist/.build-server.json`,
 * `dist/.build-web.json`) records a hash of every file the build read and the files it wrote. A
 * build whose inputs hash the same and whose outputs are all there is skipped without starting
 * esbuild or TypeScript (`npm start` runs the build first; an unchanged checkout costs one read of
 * each input). Hashes, not modification times: a `git checkout` or a copy touches files without
 * changing them, and an edit within the same second as the build is still seen.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Bumped when the manifest's shape changes: an older one then counts as no manifest. */
const FORMAT = 1;

/** A hash of each file (relative to `root`); a missing file gets `null`, so it never matches. */
export function hashInputs(root, files) {
  const hashes = {};
  for (const file of [...new Set(files)].sort()) {
    try {
      hashes[file] = createHash('sha256').update(readFileSync(path.join(root, file))).digest('base64url').slice(0, 22);
    } catch {
      hashes[file] = null;
    }
  }
  return hashes;
}

/** The manifest at `file`, or undefined when there is none (or one of an older format). */
export function readManifest(file) {
  try {
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    return manifest?.format === FORMAT ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a recorded part (`{inputs, outputs}`) still describes the files: every input hashes as
 * recorded and every output (relative to `outdir`) exists.
 */
export function upToDate(root, outdir, part) {
  if (!part?.inputs || !part.outputs) return false;
  const now = hashInputs(root, Object.keys(part.inputs));
  if (Object.entries(part.inputs).some(([file, hash]) => hash === null || now[file] !== hash)) return false;
  return part.outputs.every((name) => existsSync(path.join(outdir, name)));
}

/** Writes the manifest atomically (a concurrent reader sees the old one or the new one). */
export function writeManifest(file, manifest) {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify({ format: FORMAT, ...manifest }, null, 1) + '\n');
  renameSync(temp, file);
}

/**
 * Writes `contents` to `file` unless it holds them already, by an atomic rename (a process running
 * from the folder never reads half a file). Returns whether it wrote.
 */
export function replaceFile(file, contents) {
  const bytes = Buffer.from(contents);
  if (existsSync(file) && readFileSync(file).equals(bytes)) return false;
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, bytes);
  renameSync(temp, file);
  return true;
}
