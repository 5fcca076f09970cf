// Loads a plugin module the way both plugin keys name one (storage_plugin, source_plugin): a module path or a package name.
import { createRequire } from "node:module";
import { isAbsolute, join } from "node:path";
import { pathToFileURL } from "node:url";

/** A failure's message, whatever was thrown (an Error, a tagged error, anything else). */
export const describeFailure = (e: unknown): string =>
  e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e);

/**
 * A package is looked up first from the directory the process runs in (where an operator would
 * `npm install` it beside the properties), then from tsync's own dependencies.
 */
const importPackage = async (name: string, from: string): Promise<unknown> => {
  let resolved: string | undefined;
  try {
    resolved = createRequire(join(from, "package.json")).resolve(name);
  } catch {
    resolved = undefined; // not installed there, or ESM-only exports: Node's own resolution decides
  }
  return import(resolved === undefined ? name : pathToFileURL(resolved).href);
};

/**
 * A plugin written in TypeScript loads as it is: the compiled process registers tsx's loader the
 * first time it meets one (under tsx it is registered already, and registering again is harmless).
 */
let typescriptLoader: Promise<void> | undefined;
const allowTypeScript = (): Promise<void> =>
  (typescriptLoader ??= import("tsx/esm/api").then((m) => {
    m.register();
  }));

const isTypeScript = (path: string): boolean => /\.(ts|mts|cts)$/.test(path);

/**
 * The factory a plugin module exports: `exportName` (`createStorage`, `createSource`) or its
 * default export, which must be a function. `ref` is an absolute module path (the config resolved
 * a relative one) or a package name.
 */
export const importPluginFactory = async (ref: string, exportName: string, from: string): Promise<unknown> => {
  if (isTypeScript(ref)) await allowTypeScript();
  const mod = (await (isAbsolute(ref) ? import(pathToFileURL(ref).href) : importPackage(ref, from))) as Record<string, unknown>;
  const factory = mod[exportName] ?? mod.default;
  if (typeof factory !== "function") throw new Error(`module exports neither ${exportName} nor a default function`);
  return factory;
};
