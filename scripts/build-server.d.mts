/** Types of scripts/build-server.mjs, for the TypeScript that calls it (the benchmark, the tests). */
export declare const ENTRY_POINTS: Record<string, string>;
export declare function buildServer(options?: { outdir?: string; quiet?: boolean }): Promise<{
  outdir: string;
  outputs: string[];
  copied: string[];
  seconds: number;
  /** False when the build in `outdir` was up to date and nothing was written. */
  built: boolean;
}>;
