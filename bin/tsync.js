#!/usr/bin/env node
// Runs the compiled dist/ when it is newer than every source file (bin/build.mjs, which
// bin/install-deps runs), otherwise the TypeScript sources through tsx: an edited tree never runs
// stale code.
import { readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));

const newestSource = (dir) => {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
};

const builtAt = (() => {
  try {
    return statSync(`${root}dist/BUILT`).mtimeMs;
  } catch {
    return -1;
  }
})();

if (builtAt > newestSource(`${root}src`)) {
  await import("../dist/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
