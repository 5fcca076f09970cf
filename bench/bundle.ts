// tsync compiled ahead of time into plain JavaScript, for the memory workload: the same sources
// without tsx's loader thread and on-the-fly transforms, which cost each process tens of MB.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { repoRoot } from "./tsyncProcs.js";

/** Where the bundle goes: inside the repository (git-ignored), so its imports find node_modules. */
export const bundleDir = join(repoRoot, "bench", "out", "bundle");

/**
 * Bundles src/cli/main.ts with esbuild (which tsx already brings), packages left external.
 * Resolves to the entry point, or to the reason it could not be built.
 */
export const buildBundle = async (): Promise<{ entry: string } | { error: string }> => {
  try {
    const esbuild = await import("esbuild");
    await rm(bundleDir, { recursive: true, force: true });
    await esbuild.build({
      entryPoints: [join(repoRoot, "src", "cli", "main.ts")],
      bundle: true,
      splitting: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      outdir: bundleDir,
      logLevel: "silent",
    });
    return { entry: join(bundleDir, "main.js") };
  } catch (e) {
    return { error: e instanceof Error ? e.message.split("\n")[0]! : String(e) };
  }
};
