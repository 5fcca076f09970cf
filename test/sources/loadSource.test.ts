import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Result } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { scanForRound } from "../../src/actors/sender/scan.js";
import { runEffect } from "../../src/actors/runtime.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { SenderStartError } from "../../src/actors/sender/services.js";
import { WorkDir } from "../../src/actors/sender/workDir.js";
import { parseSenderConfig, SOURCE_PLUGINS } from "../../src/config/sender.js";
import { builtInSources, listingProblem, openSource } from "../../src/plugins/loadSource.js";
import { SourceError } from "../../src/plugins/source.js";

// A whole source plugin, as a third party would write one: every `*.tsfile` in `plugin.folder`
// (with its `.resource`) is one unit of storage group root.custom. `plugin.mode` makes it misbehave.
const tinySource = `
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";

export const createSource = (ctx) => {
  if (ctx.options.mode === "not-a-source") return Effect.succeed({ name: "tiny" });
  const folder = ctx.options.folder ?? ctx.dataDir;
  return Effect.succeed({
    name: "tiny",
    list: (groups) => {
      if (ctx.options.mode === "throw") throw new Error("tiny source blew up");
      if (ctx.options.mode === "bad-kind")
        return Effect.succeed({ units: [{ ref: { sg: "root.custom", vg: "0", tp: "0", name: "1-1-0-0.tsfile" }, parts: [{ kind: "exe", path: "/bin/sh" }] }], notReady: [], ignored: 0 });
      return Effect.promise(async () => {
        if (groups.length > 0 && !groups.includes("root.custom")) return { units: [], notReady: [], ignored: 0 };
        const names = (await readdir(folder)).filter((n) => n.endsWith(".tsfile")).sort();
        return {
          units: names.map((name) => ({
            ref: { sg: "root.custom", vg: "0", tp: "0", name },
            parts: [
              { kind: "resource", path: join(folder, name + ".resource") },
              { kind: "tsfile", path: join(folder, name) },
            ],
          })),
          notReady: [],
          ignored: 0,
        };
      });
    },
  });
};
`;

let dir: string;
let pluginPath: string;
let folder: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsync-source-plugin-"));
  pluginPath = join(dir, "tinySource.mjs");
  await writeFile(pluginPath, tinySource);
  folder = join(dir, "files");
  await mkdir(folder);
  for (const name of ["1-1-0-0.tsfile", "2-2-0-0.tsfile"]) {
    await writeFile(join(folder, name), `tsfile ${name}`);
    await writeFile(join(folder, `${name}.resource`), `resource ${name}`);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const failureOf = async <A>(e: Effect.Effect<A, SourceError>): Promise<SourceError> => {
  const exit = await Effect.runPromiseExit(e);
  if (Exit.isSuccess(exit)) throw new Error("expected a failure");
  const found = exit.cause.reasons.find((r) => r._tag === "Fail");
  if (!found || found._tag !== "Fail") throw new Error(`expected a typed failure, got ${JSON.stringify(exit.cause)}`);
  return found.error;
};

describe("source_plugin", () => {
  test("the built-in sources are the ones the config accepts by name", () => {
    expect(builtInSources).toEqual([...SOURCE_PLUGINS]);
  });

  test("a module path loads like a storage plugin's: its createSource gets data_directory and the plugin.* keys", async () => {
    const source = await Effect.runPromise(openSource(pluginPath, { dataDir: "/nonexistent", options: { folder } }));
    expect(source.name).toBe("tiny");
    const listing = await Effect.runPromise(source.list([]));
    expect(listing.units.map((u) => u.ref.name)).toEqual(["1-1-0-0.tsfile", "2-2-0-0.tsfile"]);
    expect((await Effect.runPromise(source.list(["root.other"]))).units).toEqual([]);
  });

  test("the sender's scan pins what a plugin source lists, in part order", async () => {
    const source = await Effect.runPromise(openSource(pluginPath, { dataDir: "/nonexistent", options: { folder } }));
    const work = await WorkDir.open(join(dir, "work"), "edge1", () => undefined);
    try {
      const r = await runEffect(scanForRound(source, work, []));
      expect(r.units.map((u) => [u.ref.sg, u.ref.name, u.parts.map((p) => p.kind)])).toEqual([
        ["root.custom", "1-1-0-0.tsfile", ["resource", "tsfile"]],
        ["root.custom", "2-2-0-0.tsfile", ["resource", "tsfile"]],
      ]);
      expect(r.units[0]!.parts[1]!.size).toBe("tsfile 1-1-0-0.tsfile".length);
    } finally {
      await work.close();
    }
  });

  test("a plugin that throws, lists an unknown part kind or makes no Source fails with a SourceError naming it", async () => {
    const throwing = await Effect.runPromise(openSource(pluginPath, { dataDir: dir, options: { mode: "throw" } }));
    expect((await failureOf(throwing.list([]))).message).toBe("source tiny list failed: tiny source blew up");
    const badKind = await Effect.runPromise(openSource(pluginPath, { dataDir: dir, options: { mode: "bad-kind" } }));
    expect((await failureOf(badKind.list([]))).message).toContain(
      "listed something tsync cannot send: a part of 1-1-0-0.tsfile is not { kind: resource | tsfile | mods | mods2",
    );
    expect((await failureOf(openSource(pluginPath, { dataDir: dir, options: { mode: "not-a-source" } }))).message).toContain(
      "is not a Source",
    );
  });

  test("a listing must name each part once and include the TsFile", () => {
    const ref = { sg: "root.sg", vg: "0", tp: "0", name: "1-1-0-0.tsfile" };
    expect(listingProblem({ units: [{ ref, parts: [{ kind: "resource", path: "/a" }] }], notReady: [], ignored: 0 })).toBe(
      "1-1-0-0.tsfile has no tsfile part",
    );
    expect(
      listingProblem({
        units: [
          {
            ref,
            parts: [
              { kind: "tsfile", path: "/a" },
              { kind: "tsfile", path: "/b" },
            ],
          },
        ],
        notReady: [],
        ignored: 0,
      }),
    ).toBe("1-1-0-0.tsfile lists its tsfile twice");
    expect(listingProblem({ units: [] })).toBeDefined();
  });

  test("a sender whose source_plugin cannot be loaded does not start, and says which step failed", async () => {
    const parsed = parseSenderConfig({ data_directory: dir, source_plugin: "tsync-no-such-source-plugin" }, {}, "test", dir);
    if (Result.isFailure(parsed)) throw new Error(parsed.failure.message);
    const exit = await Effect.runPromiseExit(Sender.make({ config: parsed.success }));
    if (Exit.isSuccess(exit)) throw new Error("expected the sender not to start");
    const found = exit.cause.reasons.find((r) => r._tag === "Fail");
    expect(found?._tag === "Fail" && found.error).toBeInstanceOf(SenderStartError);
    expect(found?._tag === "Fail" && found.error).toMatchObject({ step: "source plugin" });
    expect(found?._tag === "Fail" ? found.error.message : "").toContain(`cannot load source plugin "tsync-no-such-source-plugin"`);
  });
});
