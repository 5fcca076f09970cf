// The storage contract every storage passes, built-in or third-party (after rclone's fstests):
// each plugin's test file calls `storageContract` with a way to open it as the receiver does.
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { writeSealedTsFile } from "../../src/actors/tsfileFiles.js";
import type { FileRef, PartKind } from "../../src/protocol/messages.js";
import { frameMlogRecord } from "../../src/iotdb/schemaRecords.js";
import type { SchemaBatch, StagedPart, Storage, TsFileFacts } from "../../src/plugins/storage.js";

export interface ContractSubject {
  readonly storage: Storage;
  /** The bytes the destination holds for a part, or undefined when it holds none. */
  readonly read: (senderId: string, ref: FileRef, kind: PartKind) => Promise<Uint8Array | undefined>;
  /** The schema records kept for a sender, in order (as the storage's `records` strings). */
  readonly schemaKept: (senderId: string) => Promise<ReadonlyArray<string>>;
  readonly close: () => Promise<void>;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export const contractFacts: TsFileFacts = {
  version: 3,
  devices: [
    { id: "root.sg1.d1", startTime: "1700000000000", endTime: "1700000009000" },
    { id: "root.sg1.d2", startTime: "1700000005000", endTime: "1700000012000" },
  ],
};

/** Runs the shared contract against `open(dataDir)`, which must give a fresh storage each call. */
export const storageContract = (name: string, open: (dataDir: string) => Promise<ContractSubject>): void => {
  describe(`${name}: storage contract`, () => {
    let root: string;
    let tsfile: Uint8Array;
    let resource: Uint8Array;
    let staged = 0;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), `tsync-contract-${name}-`));
      const src = join(root, "source");
      await mkdir(src, { recursive: true });
      const w = await writeSealedTsFile(src, "1700000000000-1-0-0.tsfile", {
        devices: [
          {
            path: "root.sg1.d1",
            measurements: [{ name: "s1", dataType: "INT64", timestamps: [1700000000000n, 1700000009000n], values: [1n, 2n] }],
          },
          {
            path: "root.sg1.d2",
            measurements: [{ name: "s1", dataType: "DOUBLE", timestamps: [1700000005000n, 1700000012000n], values: [1.5, 2.5] }],
          },
        ],
      });
      tsfile = await readFile(w.tsfilePath);
      resource = await readFile(w.resourcePath);
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    /** A verified part in a staging folder of its own: a storage may move it away. */
    const stage = async (kind: PartKind, bytes: Uint8Array): Promise<StagedPart> => {
      const dir = join(root, "staging", String(staged++));
      await mkdir(dir, { recursive: true });
      const path = join(dir, `${kind}.ready`);
      await writeFile(path, bytes);
      return { kind, path, size: bytes.length, sha256: sha256(bytes) };
    };

    const withStorage = async (f: (s: ContractSubject, dataDir: string) => Promise<void>) => {
      const dataDir = await mkdtemp(join(root, "data-"));
      const opened = await open(dataDir);
      // Buffers and Uint8Arrays of the same bytes are the same content here.
      const s: ContractSubject = {
        ...opened,
        read: async (...a) => ((b) => (b === undefined ? undefined : new Uint8Array(b)))(await opened.read(...a)),
      };
      try {
        await f(s, dataDir);
      } finally {
        await opened.close();
      }
    };

    const run = <A>(e: Effect.Effect<A, unknown>) => Effect.runPromise(e);
    const ref = (over: Partial<FileRef> = {}): FileRef => ({
      sg: "root.sg1",
      vg: "0",
      tp: "2811",
      name: "1700000000000-1-0-0.tsfile",
      ...over,
    });

    test("a loaded TsFile and its .resource are held byte for byte, and has() answers true for their digests only", async () => {
      await withStorage(async (s) => {
        const r = ref();
        await run(
          s.storage.load({
            senderId: "edge1",
            ref: r,
            parts: [await stage("resource", resource), await stage("tsfile", tsfile)],
            facts: contractFacts,
          }),
        );
        expect(await s.read("edge1", r, "tsfile")).toEqual(new Uint8Array(tsfile));
        expect(await s.read("edge1", r, "resource")).toEqual(new Uint8Array(resource));
        expect(await run(s.storage.has(r, "tsfile", sha256(tsfile)))).toBe(true);
        expect(await run(s.storage.has(r, "resource", sha256(resource)))).toBe(true);
        expect(await run(s.storage.has(r, "tsfile", sha256(resource)))).toBe(false);
        expect(await run(s.storage.has(r, "mods", sha256(tsfile)))).toBe(false);
        expect(await run(s.storage.has(ref({ tp: "2812" }), "tsfile", sha256(tsfile)))).toBe(false);
      });
    });

    test("loading the same parts again (a retry after a crash) leaves one intact copy", async () => {
      await withStorage(async (s) => {
        const r = ref();
        for (let i = 0; i < 2; i++)
          await run(
            s.storage.load({
              senderId: "edge1",
              ref: r,
              parts: [await stage("tsfile", tsfile), await stage("resource", resource)],
              facts: contractFacts,
            }),
          );
        expect(await s.read("edge1", r, "tsfile")).toEqual(new Uint8Array(tsfile));
        expect(await run(s.storage.has(r, "tsfile", sha256(tsfile)))).toBe(true);
      });
    });

    test("loadBytes, where offered, holds the parts byte for byte, takes a repeat (and a mix with load) as one copy, and leaves no temporary file", async (ctx) => {
      await withStorage(async (s, dataDir) => {
        const loadBytes = s.storage.loadBytes;
        if (!loadBytes) return ctx.skip(`${name} has no loadBytes: the receiver stages carried parts and calls load`);
        const r = ref({ name: "1700000000000-7-0-0.tsfile" });
        const carried = (kind: PartKind, bytes: Uint8Array) => ({ kind, bytes, size: bytes.length, sha256: sha256(bytes) });
        for (let i = 0; i < 2; i++)
          await run(
            loadBytes({
              senderId: "edge1",
              ref: r,
              parts: [carried("tsfile", tsfile), carried("resource", resource)],
              facts: contractFacts,
            }),
          );
        await run(s.storage.load({ senderId: "edge1", ref: r, parts: [await stage("tsfile", tsfile)], facts: contractFacts }));
        expect(await s.read("edge1", r, "tsfile")).toEqual(new Uint8Array(tsfile));
        expect(await s.read("edge1", r, "resource")).toEqual(new Uint8Array(resource));
        expect(await run(s.storage.has(r, "tsfile", sha256(tsfile)))).toBe(true);
        expect(await run(s.storage.has(r, "resource", sha256(resource)))).toBe(true);
        const leftovers = (await readdir(dataDir, { recursive: true })).filter((f) => String(f).includes("tsync-tmp"));
        expect(leftovers).toEqual([]);
      });
    });

    test("a side file loaded later joins its TsFile, and a changed one replaces the old", async () => {
      await withStorage(async (s) => {
        const r = ref();
        await run(
          s.storage.load({
            senderId: "edge1",
            ref: r,
            parts: [await stage("tsfile", tsfile), await stage("resource", resource)],
            facts: contractFacts,
          }),
        );
        const mods1 = new TextEncoder().encode("deletion one");
        const mods2 = new TextEncoder().encode("deletion one, deletion two");
        await run(s.storage.load({ senderId: "edge1", ref: r, parts: [await stage("mods", mods1)], facts: undefined }));
        expect(await run(s.storage.has(r, "mods", sha256(mods1)))).toBe(true);
        await run(s.storage.load({ senderId: "edge1", ref: r, parts: [await stage("mods", mods2)], facts: undefined }));
        expect(await run(s.storage.has(r, "mods", sha256(mods2)))).toBe(true);
        expect(await run(s.storage.has(r, "mods", sha256(mods1)))).toBe(false);
        expect(await s.read("edge1", r, "mods")).toEqual(new Uint8Array(mods2));
        expect(await run(s.storage.has(r, "tsfile", sha256(tsfile)))).toBe(true);
      });
    });

    test("files of the same name in two partitions are two files", async () => {
      await withStorage(async (s) => {
        const a = ref({ tp: "1" });
        const b = ref({ tp: "2" });
        const mods = new TextEncoder().encode("only in b");
        await run(s.storage.load({ senderId: "edge1", ref: a, parts: [await stage("tsfile", tsfile)], facts: contractFacts }));
        await run(
          s.storage.load({
            senderId: "edge1",
            ref: b,
            parts: [await stage("tsfile", tsfile), await stage("mods", mods)],
            facts: contractFacts,
          }),
        );
        expect(await run(s.storage.has(a, "mods", sha256(mods)))).toBe(false);
        expect(await run(s.storage.has(b, "mods", sha256(mods)))).toBe(true);
        expect(await run(s.storage.remove("edge1", b))).toBe(true);
        expect(await run(s.storage.has(a, "tsfile", sha256(tsfile)))).toBe(true);
      });
    });

    test("remove takes the TsFile with its side files and answers whether anything was there", async () => {
      await withStorage(async (s) => {
        const r = ref();
        await run(
          s.storage.load({
            senderId: "edge1",
            ref: r,
            parts: [await stage("tsfile", tsfile), await stage("resource", resource), await stage("mods", new TextEncoder().encode("d"))],
            facts: contractFacts,
          }),
        );
        expect(await run(s.storage.remove("edge1", r))).toBe(true);
        for (const kind of ["tsfile", "resource", "mods"] as const) {
          expect(await s.read("edge1", r, kind)).toBeUndefined();
        }
        expect(await run(s.storage.has(r, "tsfile", sha256(tsfile)))).toBe(false);
        expect(await run(s.storage.remove("edge1", r))).toBe(false);
      });
    });

    test("a load whose staged part is missing fails as a StorageError and loads nothing", async () => {
      await withStorage(async (s) => {
        const r = ref();
        const gone: StagedPart = { kind: "tsfile", path: join(root, "no-such-file.ready"), size: tsfile.length, sha256: sha256(tsfile) };
        const exit = await Effect.runPromiseExit(s.storage.load({ senderId: "edge1", ref: r, parts: [gone], facts: contractFacts }));
        expect(Exit.isFailure(exit)).toBe(true);
        if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("StorageError");
        expect(await run(s.storage.has(r, "tsfile", sha256(tsfile)))).toBe(false);
        // Still usable afterwards.
        await run(s.storage.load({ senderId: "edge1", ref: r, parts: [await stage("tsfile", tsfile)], facts: contractFacts }));
        expect(await run(s.storage.has(r, "tsfile", sha256(tsfile)))).toBe(true);
      });
    });

    test("schema batches are kept in log order, and a batch repeated after a crash does not lose or reorder records", async () => {
      await withStorage(async (s) => {
        const plans = ["create root.sg1.d1.s1 INT64", "create root.sg1.d2.s1 DOUBLE", "set ttl root.sg1 86400000"].map((t) =>
          new TextEncoder().encode(t),
        );
        const frames = plans.map(frameMlogRecord);
        const b64 = plans.map((p) => Buffer.from(p).toString("base64"));
        let offset = 0;
        const batches: SchemaBatch[] = frames.map((bytes) => {
          const b: SchemaBatch = { format: "mlog.bin", epoch: 0, offset, bytes };
          offset += bytes.length;
          return b;
        });
        const [b0, b1, b2] = batches;
        await run(s.storage.applySchema("edge1", [b64[0]!], b0));
        await run(s.storage.applySchema("edge1", [b64[1]!], b1));
        await run(s.storage.applySchema("edge1", [b64[1]!], b1));
        await run(s.storage.applySchema("edge1", [b64[2]!], b2));
        const kept = await s.schemaKept("edge1");
        // At least once, in order: dropping repeats gives exactly the log.
        expect(kept.filter((r, i) => i === 0 || r !== kept[i - 1])).toEqual(b64);
      });
    });
  });
};
