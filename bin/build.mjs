#!/usr/bin/env node
// Compiles tsync to plain JavaScript in dist/ (esbuild, packages left external). The processes then
// run without tsx's loader thread and on-the-fly transforms, which cost each of them tens of MB.
import { cp, mkdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("../", import.meta.url));
const dist = `${root}dist`;
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [`${root}src/cli/main.ts`],
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  outdir: dist,
  sourcemap: true,
  logLevel: "warning",
});
// The dashboard serves its page files from beside its module.
await cp(`${root}src/dashboard/page`, `${dist}/page`, { recursive: true });
await writeFile(`${dist}/BUILT`, `${new Date().toISOString()}\n`);
