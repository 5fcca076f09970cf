#!/usr/bin/env node
// Compiles tsync to plain JavaScript in dist/ (esbuild, see esbuildOptions.mjs). The processes then
// run without tsx's loader thread and on-the-fly transforms, which cost each of them tens of MB.
import { cp, mkdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { esbuildOptions } from "./esbuildOptions.mjs";

const root = fileURLToPath(new URL("../", import.meta.url));
const dist = `${root}dist`;
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({ ...esbuildOptions([`${root}src/cli/main.ts`]), splitting: true, outdir: dist, sourcemap: true });
// The dashboard serves its page files from beside its module.
await cp(`${root}src/dashboard/page`, `${dist}/page`, { recursive: true });
await writeFile(`${dist}/BUILT`, `${new Date().toISOString()}\n`);
