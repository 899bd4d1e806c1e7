/** Types of scripts/build-server.mjs, for the TypeScript that calls it (the benchmark). */
export declare const ENTRY_POINTS: Record<string, string>;
export declare function buildServer(options?: { outdir?: string; quiet?: boolean }): Promise<{ outdir: string; outputs: string[]; copied: string[]; seconds: number }>;
