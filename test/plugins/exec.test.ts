import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect, Exit } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { partFileName } from "../../src/protocol/parts.js";
import { openStorage } from "../../src/plugins/loadStorage.js";
import { frameMlogRecord, splitSchemaRecords } from "../../src/iotdb/schemaRecords.js";
import type { StagedPart, Storage } from "../../src/plugins/storage.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import { deleteOnEdge, openPair } from "./e2e.js";
import { contractFacts, storageContract } from "./storageContract.js";

const orUndefined = (p: string) =>
  readFile(p).then(
    (b) => new Uint8Array(b),
    () => undefined,
  );
const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** Commands that copy each file into `dest` in IoTDB's layout and delete it from there: an IoTDB stand-in. */
const copyCommands = (dest: string) => {
  const d = `d='${dest}'/"$TSYNC_STORAGE_GROUP/$TSYNC_VIRTUAL_GROUP/$TSYNC_TIME_PARTITION"`;
  return {
    load_command: `${d} && mkdir -p "$d" && for f in "$TSYNC_TSFILE" "$TSYNC_RESOURCE" "$TSYNC_MODS" "$TSYNC_MODS2"; do if [ -n "$f" ]; then cp "$f" "$d/"; fi; done`,
    delete_command: `${d} && rm -f "$d/$TSYNC_FILE_NAME" "$d/$TSYNC_FILE_NAME.resource" "$d/$TSYNC_FILE_NAME.mods" "$d/$TSYNC_FILE_NAME.mods2"`,
  };
};

const openExec = (dataDir: string, options: Record<string, string>): Promise<Storage> =>
  Effect.runPromise(openStorage("exec", { dataDir, options, natsServers: "", natsOptions: {} }));

storageContract("exec", async (dataDir) => {
  const dest = join(dataDir, "dest");
  const storage = await openExec(dataDir, copyCommands(dest));
  return {
    storage,
    read: (_sender, ref, kind) => orUndefined(join(dest, ref.sg, ref.vg, ref.tp, partFileName(ref.name, kind))),
    // Without plugin.schema_command the records are kept as the fs storage keeps them.
    schemaKept: async (sender) => splitSchemaRecords("mlog.bin", await readFile(join(dataDir, "schema", sender, "mlog.bin"))),
    close: () => Effect.runPromise(storage.close),
  };
});

let root: string;
beforeAll(async () => {
  root = await tempRoot();
});
afterAll(async () => {
  await removeAll(root);
});

const stage = async (name: string, bytes: string): Promise<StagedPart> => {
  await mkdir(join(root, "staged"), { recursive: true });
  const path = join(root, "staged", name);
  await writeFile(path, bytes);
  return { kind: "tsfile", path, size: bytes.length, sha256: sha256(bytes) };
};
const ref = { sg: "root.sg1", vg: "0", tp: "7", name: "1-1-0-0.tsfile" };

describe("exec specifics", () => {
  test("a non-zero exit fails the load with the command's stderr; nothing is recorded and the staged file stays for a retry", async () => {
    const storage = await openExec(join(root, "fails"), {
      load_command: `echo "load refused: $TSYNC_FILE_NAME is not wanted" >&2; exit 3`,
    });
    const part = await stage("fails.ready", "tsfile bytes");
    const exit = await Effect.runPromiseExit(storage.load({ senderId: "edge1", ref, parts: [part], facts: contractFacts }));
    expect(Exit.isFailure(exit)).toBe(true);
    if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("exited with 3: load refused: 1-1-0-0.tsfile is not wanted");
    expect(await Effect.runPromise(storage.has(ref, "tsfile", part.sha256))).toBe(false);
    expect(await readFile(part.path, "utf8")).toBe("tsfile bytes");
    await Effect.runPromise(storage.close);
  });

  test("the command gets the path as $1 and the metadata in TSYNC_* variables; the accepted record survives a restart", async () => {
    const dataDir = join(root, "env");
    const envOut = join(root, "env.txt");
    const options = { load_command: `{ echo "1=$1"; env | grep '^TSYNC_' | sort; } > '${envOut}'; test -f "$TSYNC_TSFILE"` };
    const storage = await openExec(dataDir, options);
    const part = await stage("env.ready", "tsfile bytes");
    await Effect.runPromise(storage.load({ senderId: "edge1", ref, parts: [part], facts: contractFacts }));
    await Effect.runPromise(storage.close);
    const env = Object.fromEntries(
      (await readFile(envOut, "utf8"))
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const dir = join(dataDir, ".tsync", "exec", "edge1", "root.sg1", "0", "7");
    expect(env).toMatchObject({
      "1": join(dir, "1-1-0-0.tsfile"),
      TSYNC_SENDER: "edge1",
      TSYNC_STORAGE_GROUP: "root.sg1",
      TSYNC_VIRTUAL_GROUP: "0",
      TSYNC_TIME_PARTITION: "7",
      TSYNC_FILE_NAME: "1-1-0-0.tsfile",
      TSYNC_TSFILE: join(dir, "1-1-0-0.tsfile"),
      TSYNC_PARTS: "tsfile",
      TSYNC_SHA256: part.sha256,
      TSYNC_DEVICES: "root.sg1.d1,root.sg1.d2",
      TSYNC_DEVICE_COUNT: "2",
      TSYNC_START_TIME: "1700000000000",
      TSYNC_END_TIME: "1700000012000",
      TSYNC_TSFILE_VERSION: "3",
      TSYNC_MODS: "",
    });
    // The linked copy is gone once the command returned.
    expect(await readdir(dir)).toEqual([]);
    const reopened = await openExec(dataDir, options);
    expect(await Effect.runPromise(reopened.has(ref, "tsfile", part.sha256))).toBe(true);
    await Effect.runPromise(reopened.close);
  });

  test("plugin.schema_command gets each batch's bytes on stdin with its position in the environment", async () => {
    const out = join(root, "schema-out");
    const storage = await openExec(join(root, "schema"), {
      load_command: "true",
      schema_command: `cat >> '${out}.bin'; echo "$TSYNC_SCHEMA_FORMAT $TSYNC_SCHEMA_EPOCH $TSYNC_SCHEMA_OFFSET $TSYNC_SCHEMA_RECORDS $1" >> '${out}.txt'`,
    });
    const a = frameMlogRecord(new TextEncoder().encode("plan a"));
    const b = frameMlogRecord(new TextEncoder().encode("plan b"));
    await Effect.runPromise(storage.applySchema("edge1", ["cGxhbiBh"], { format: "mlog.bin", epoch: 2, offset: 0, bytes: a }));
    await Effect.runPromise(storage.applySchema("edge1", ["cGxhbiBi"], { format: "mlog.bin", epoch: 2, offset: a.length, bytes: b }));
    expect(new Uint8Array(await readFile(`${out}.bin`))).toEqual(new Uint8Array([...a, ...b]));
    expect(await readFile(`${out}.txt`, "utf8")).toBe(`mlog.bin 2 0 1 mlog.bin\nmlog.bin 2 ${a.length} 1 mlog.bin\n`);
    await Effect.runPromise(storage.close);
  });

  test("a command that outlives plugin.command_timeout_in_second is killed and the load fails saying so", async () => {
    const storage = await openExec(join(root, "slow"), { load_command: "sleep 30", command_timeout_in_second: "1" });
    const exit = await Effect.runPromiseExit(
      storage.load({ senderId: "edge1", ref, parts: [await stage("slow.ready", "x")], facts: undefined }),
    );
    expect(Exit.isFailure(exit)).toBe(true);
    if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("timed out after 1 s");
    await Effect.runPromise(storage.close);
  });

  test("without plugin.load_command the storage does not open, and says which key is missing", async () => {
    const exit = await Effect.runPromiseExit(openStorage("exec", { dataDir: root, options: {}, natsServers: "", natsOptions: {} }));
    expect(Exit.isFailure(exit)).toBe(true);
    if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("plugin.load_command is required");
  });
});

describe("exec end to end", () => {
  let server: TestNatsServer;
  beforeAll(async () => {
    server = await startTestNatsServer();
  });
  afterAll(async () => {
    await server.cleanup();
  });

  test("each received file is handed to load_command, and each deletion to delete_command", async () => {
    const dest = join(root, "iotdb");
    const cmds = copyCommands(dest);
    const pair = await openPair(server, root, {
      storage_plugin: "exec",
      "plugin.load_command": cmds.load_command,
      "plugin.delete_command": cmds.delete_command,
    });
    try {
      const first = await pair.round();
      expect(roundSucceeded(first), JSON.stringify(first)).toBe(true);
      for (const f of pair.files) expect(await readFile(join(dest, f.sg, f.vg, f.tp, f.name))).toEqual(await readFile(f.path));
      const [gone] = pair.files;
      await deleteOnEdge(gone!);
      expect((await pair.round()).deleted).toHaveLength(1);
      expect(await orUndefined(join(dest, gone!.sg, gone!.vg, gone!.tp, gone!.name))).toBeUndefined();
    } finally {
      await pair.close();
    }
  });

  test("a load command that fails reaches the sender's summary with its stderr", async () => {
    const pair = await openPair(server, root, {
      storage_plugin: "exec",
      "plugin.load_command": `echo "IoTDB: cannot load $TSYNC_FILE_NAME" >&2; exit 1`,
    });
    try {
      const summary = await pair.round();
      expect(summary.sent).toEqual([]);
      expect(summary.failed.map((f) => f.file).sort()).toEqual(pair.files.map((f) => `${f.sg}/${f.vg}/${f.tp}/${f.name}`).sort());
      for (const f of summary.failed) expect(f.reason).toContain(`IoTDB: cannot load ${f.file.split("/").pop()}`);
    } finally {
      await pair.close();
    }
  });
});
