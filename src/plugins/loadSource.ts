// Loads the source `source_plugin` names (built in, a module path or a package), with the rules of storage plugins, and guards its failures.
import { Cause, Effect } from "effect";
import { partOrder } from "../protocol/parts.js";
import { describeFailure, importPluginFactory } from "./loadModule.js";
import { SourceError, type Source, type SourceContext, type SourceFactory, type SourceListing, type SourcePartition } from "./source.js";
import { createIotdbSource } from "./sourceIotdb.js";

const builtIns: Readonly<Record<string, () => Promise<SourceFactory>>> = {
  iotdb: async () => createIotdbSource,
};

export const builtInSources: ReadonlyArray<string> = Object.keys(builtIns);

/**
 * `source_plugin` is a built-in name, a path to a module, or a package name (looked up from `from`,
 * then from tsync's own dependencies). A third-party module exports `createSource` (or a default
 * export) of type `SourceFactory`.
 */
export const resolveSourceFactory = (ref: string, from: string = process.cwd()): Effect.Effect<SourceFactory, SourceError> =>
  Effect.tryPromise({
    try: async () => {
      const builtIn = builtIns[ref];
      if (builtIn) return builtIn();
      return (await importPluginFactory(ref, "createSource", from)) as SourceFactory;
    },
    catch: (cause) => new SourceError({ message: `cannot load source plugin "${ref}": ${describeFailure(cause)}`, cause }),
  });

/** Whatever a plugin fails with (its own error, a throw, a defect) becomes a SourceError naming it; interruption passes. */
const guarded = <A>(plugin: string, op: string, run: () => Effect.Effect<A, unknown>): Effect.Effect<A, SourceError> =>
  Effect.suspend(run).pipe(
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>);
      const e = Cause.squash(cause);
      if (e instanceof SourceError) return Effect.fail(e);
      const tag = typeof e === "object" && e !== null && "_tag" in e ? `${String(e._tag)}: ` : "";
      return Effect.fail(new SourceError({ message: `source ${plugin} ${op} failed: ${tag}${describeFailure(e)}`, cause: e }));
    }),
  );

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const isRef = (v: unknown): boolean => isRecord(v) && ["sg", "vg", "tp", "name"].every((k) => typeof v[k] === "string");
const kinds: ReadonlySet<string> = new Set(partOrder);

/**
 * What is wrong with a listing, if anything: the scan trusts its shape. Each unit names its file
 * and its parts once each, of the known kinds, the TsFile among them. Names are not checked here:
 * the receiver refuses a name it cannot take, file by file.
 */
export const listingProblem = (l: unknown): string | undefined => {
  if (!isRecord(l) || !Array.isArray(l.units) || !Array.isArray(l.notReady) || typeof l.ignored !== "number")
    return "a listing has units and notReady (arrays) and ignored (a number)";
  if (!l.notReady.every(isRef)) return "notReady holds something that is not a FileRef { sg, vg, tp, name }";
  for (const u of l.units as unknown[]) {
    if (!isRecord(u) || !isRef(u.ref) || !Array.isArray(u.parts)) return "a unit is { ref: FileRef, parts: SourcePart[] }";
    const name = String((u.ref as Record<string, unknown>).name);
    const seen = new Set<string>();
    for (const p of u.parts as unknown[]) {
      if (!isRecord(p) || typeof p.kind !== "string" || !kinds.has(p.kind) || typeof p.path !== "string")
        return `a part of ${name} is not { kind: ${partOrder.join(" | ")}, path: string }`;
      if (seen.has(p.kind)) return `${name} lists its ${p.kind} twice`;
      seen.add(p.kind);
    }
    if (!seen.has("tsfile")) return `${name} has no tsfile part`;
  }
  return undefined;
};

/** What is wrong with a partition's stamps, if anything: each partition once, by its names and a string stamp. */
export const stampsProblem = (ps: unknown): string | undefined => {
  if (!Array.isArray(ps)) return "partition stamps are an array of { sg, vg, tp, stamp }";
  const seen = new Set<string>();
  for (const p of ps as unknown[]) {
    if (
      !isRecord(p) ||
      !["sg", "vg", "tp"].every((k) => typeof p[k] === "string") ||
      !(p.stamp === undefined || typeof p.stamp === "string")
    )
      return "a partition is { sg, vg, tp: string, stamp: string | undefined }";
    const key = `${String(p.sg)}/${String(p.vg)}/${String(p.tp)}`;
    if (seen.has(key)) return `partition ${key} reported twice`;
    seen.add(key);
  }
  return undefined;
};

/** What is wrong with one partition's listing, if anything: as `listingProblem`, every file in that partition. */
export const partitionListingProblem = (p: SourcePartition, l: unknown): string | undefined => {
  const problem = listingProblem(l);
  if (problem !== undefined) return problem;
  const listing = l as SourceListing;
  const outside = [...listing.units.map((u) => u.ref), ...listing.notReady].find((r) => r.sg !== p.sg || r.vg !== p.vg || r.tp !== p.tp);
  return outside && `partition ${p.sg}/${p.vg}/${p.tp} lists ${outside.name} of another partition`;
};

/** The source with every failure a SourceError naming the plugin, and its listings checked. */
export const guardSource = (s: Source): Source => {
  const name = typeof s.name === "string" ? s.name : "source";
  // The same check for the listings by partition (`byPartition`), when the source has them.
  const checked =
    <A>(problemOf: (a: A) => string | undefined) =>
    (a: A): Effect.Effect<A, SourceError> => {
      const problem = problemOf(a);
      return problem === undefined
        ? Effect.succeed(a)
        : Effect.fail(new SourceError({ message: `source ${name} listed something tsync cannot send: ${problem}` }));
    };
  const byPartition = isRecord(s.byPartition) ? s.byPartition : undefined;
  return {
    name,
    list: (storageGroups) =>
      guarded(name, "list", () => s.list(storageGroups)).pipe(
        Effect.flatMap((listing: SourceListing) => {
          const problem = listingProblem(listing);
          return problem === undefined
            ? Effect.succeed(listing)
            : Effect.fail(new SourceError({ message: `source ${name} listed something tsync cannot send: ${problem}` }));
        }),
      ),
    ...(byPartition && typeof byPartition.stamps === "function" && typeof byPartition.list === "function"
      ? {
          byPartition: {
            stamps: (storageGroups) =>
              guarded(name, "list", () => byPartition.stamps(storageGroups)).pipe(
                Effect.flatMap(checked<ReadonlyArray<SourcePartition>>(stampsProblem)),
              ),
            list: (p) =>
              guarded(name, "list", () => byPartition.list(p)).pipe(
                Effect.flatMap(checked<SourceListing>((l) => partitionListingProblem(p, l))),
              ),
          },
        }
      : {}),
  };
};

const checkShape = (ref: string, s: unknown): Effect.Effect<Source, SourceError> =>
  isRecord(s) && typeof s.list === "function"
    ? Effect.succeed(s as unknown as Source)
    : Effect.fail(new SourceError({ message: `source plugin "${ref}" made something that is not a Source (it has no list function)` }));

/** Loads the plugin, builds the source and wraps it so every failure is a SourceError. */
export const openSource = (ref: string, ctx: SourceContext, from?: string): Effect.Effect<Source, SourceError> =>
  resolveSourceFactory(ref, from).pipe(
    Effect.flatMap((factory) => guarded(ref, "open", () => factory(ctx))),
    Effect.flatMap((s) => checkShape(ref, s)),
    Effect.map(guardSource),
  );
