// tsync compiled ahead of time into plain JavaScript for one bench run: the sources as they are
// when the run starts, so a tree edited during the run does not change what is measured.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { repoRoot } from "./tsyncProcs.js";

/**
 * Bundles src/cli/main.ts with esbuild, packages left external, into a directory of its own
 * inside the repository (git-ignored), so its imports find node_modules. Resolves to the entry
 * point and the directory to remove afterwards, or to the reason it could not be built.
 */
export const buildBundle = async (): Promise<{ entry: string; dir: string } | { error: string }> => {
  const dir = join(repoRoot, "bench", "out", `bundle-${process.pid}`);
  try {
    const esbuild = await import("esbuild");
    await rm(dir, { recursive: true, force: true });
    await esbuild.build({
      entryPoints: [join(repoRoot, "src", "cli", "main.ts")],
      bundle: true,
      splitting: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      outdir: dir,
      logLevel: "silent",
    });
    return { entry: join(dir, "main.js"), dir };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    return { error: e instanceof Error ? e.message.split("\n")[0]! : String(e) };
  }
};
