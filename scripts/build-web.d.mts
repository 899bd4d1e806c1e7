/** Types of scripts/build-web.mjs, for the tests that build the bundles before using them. */
export declare const DIST: string;
export declare const CLIENT_BUDGET: number;
export interface BundleResult {
  name: 'client.js' | 'widget.js' | 'convo-chat.js' | 'agui.js';
  bytes: number;
  gzipBytes: number;
  /** Source files bundled into it (esbuild's metafile inputs, relative to the repository). */
  inputs: string[];
}
/** Builds what is not up to date in `outdir` (default DIST); `types: false` leaves the declarations alone. */
export declare function buildWeb(options?: { quiet?: boolean; types?: boolean; outdir?: string }): Promise<BundleResult[]>;
