import { fileURLToPath } from "node:url";
import { Effect, Exit } from "effect";
import { describe, expect, test } from "vitest";
import { builtInStorages, openStorage } from "../../src/plugins/loadStorage.js";
import { StorageError, type Storage } from "../../src/plugins/storage.js";

const fixture = fileURLToPath(new URL("./fixtures/misbehavingStorage.ts", import.meta.url));
const ctx = (options: Record<string, string> = {}) => ({ dataDir: "/nonexistent", options, natsServers: "", natsOptions: {} });
const ref = { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile" };

const failureOf = async <A>(e: Effect.Effect<A, StorageError>): Promise<StorageError> => {
  const exit = await Effect.runPromiseExit(e);
  if (Exit.isSuccess(exit)) throw new Error("expected a failure");
  const found = exit.cause.reasons.find((r) => r._tag === "Fail");
  if (!found || found._tag !== "Fail") throw new Error(`expected a typed failure, got ${JSON.stringify(exit.cause)}`);
  return found.error;
};

describe("loading storages", () => {
  test("fs, objectstore and exec are built in", () => {
    expect(builtInStorages).toEqual(["fs", "objectstore", "exec"]);
  });

  test("whatever a plugin throws, dies with or fails with reaches the receiver as a StorageError naming plugin and operation", async () => {
    const s: Storage = await Effect.runPromise(openStorage(fixture, ctx()));
    const load = await failureOf(s.load({ senderId: "e", ref, parts: [], facts: undefined }));
    expect(load).toBeInstanceOf(StorageError);
    expect(load).toMatchObject({ op: "load", message: "misbehaving load failed: thrown outside any Effect" });
    expect(await failureOf(s.remove("e", ref))).toMatchObject({
      op: "remove",
      message: "misbehaving remove failed: died inside an Effect",
    });
    expect((await failureOf(s.has(ref, "tsfile", "0".repeat(64)))).op).toBe("has");
  });

  test("a factory that makes something other than a Storage is refused when the receiver starts", async () => {
    const e = await failureOf(openStorage(fixture, ctx({ shape: "wrong" })));
    expect(e.message).toContain("missing load, remove, has, applySchema");
  });

  test("a package that is not installed is named in the error", async () => {
    const e = await failureOf(openStorage("tsync-no-such-storage-plugin", ctx()));
    expect(e.message).toContain(`cannot load storage plugin "tsync-no-such-storage-plugin"`);
  });
});
