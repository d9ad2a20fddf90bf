// Types of what the unit tests read from eslint.config.mjs.
export declare const browserSafeEngine: readonly string[];
declare const config: unknown;
export default config;
