// tsync compiled ahead of time into plain JavaScript for one bench run: the sources as they are
// when the run starts, so a tree edited during the run does not change what is measured.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { esbuildOptions } from "../bin/esbuildOptions.mjs";
import { repoRoot } from "./tsyncProcs.js";

/**
 * Bundles src/cli/main.ts with esbuild as bin/build.mjs does (bin/esbuildOptions.mjs), into a directory of its own
 * inside the repository (git-ignored), so its imports find node_modules. Resolves to the entry
 * point and the directory to remove afterwards, or to the reason it could not be built.
 */
export const buildBundle = async (): Promise<{ entry: string; dir: string } | { error: string }> => {
  const dir = join(repoRoot, "bench", "out", `bundle-${process.pid}`);
  try {
    const esbuild = await import("esbuild");
    await rm(dir, { recursive: true, force: true });
    await esbuild.build({ ...esbuildOptions([join(repoRoot, "src", "cli", "main.ts")]), splitting: true, outdir: dir, logLevel: "silent" });
    return { entry: join(dir, "main.js"), dir };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    return { error: e instanceof Error ? e.message.split("\n")[0]! : String(e) };
  }
};
