// The one set of esbuild options tsync's JavaScript is built with: by bin/build.mjs for dist/, and
// by the bench for what it measures, so the bench measures what users run.

/**
 * Left as imports from node_modules. Everything else is bundled and tree-shaken: `effect` above
 * all, whose whole package, imported, costs every process some 40 MB it never uses. Storage and
 * source plugins keep importing node_modules' `effect`; Effect values cross between the two copies.
 */
export const externalPackages = [
  "@nats-io/*",
  "@statelyai/inspect",
  "dot-properties",
  "esbuild",
  "ipaddr.js",
  "prom-client",
  "safe-stable-stringify",
  "tsx",
  "ws",
  "xstate",
  "playwright-core",
];

/** Options for a Node 20 ESM bundle; add `outdir` or `outfile`. */
export const esbuildOptions = (entryPoints) => ({
  entryPoints,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: externalPackages,
  logLevel: "warning",
});
