// Types of esbuildOptions.mjs for the TypeScript that imports it (the bench).
import type { BuildOptions } from "esbuild";
export declare const externalPackages: string[];
export declare const esbuildOptions: (entryPoints: string[]) => BuildOptions;
