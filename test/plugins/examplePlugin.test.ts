import { mkdir, readFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Effect, Exit } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openStorage, resolveStorageFactory } from "../../src/plugins/loadStorage.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { partFileName } from "../../src/protocol/parts.js";
import { receiverConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import { deleteOnEdge, openPair } from "./e2e.js";
import { storageContract } from "./storageContract.js";

/** As an operator writes it in conf/receiver.properties, relative to where tsync starts. */
const pluginRef = "./examples/storage-plugin/index.ts";
const pluginDir = fileURLToPath(new URL("../../examples/storage-plugin/", import.meta.url));

interface ManifestEntry {
  readonly sender: string;
  readonly kind: string;
  readonly sha256: string;
  readonly devices: ReadonlyArray<{ readonly id: string }>;
  readonly label?: string;
}
const manifestOf = async (dir: string): Promise<Record<string, ManifestEntry>> =>
  JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Record<string, ManifestEntry>;

storageContract("example plugin", async (dataDir) => {
  const directory = join(dataDir, "files");
  const config = receiverConfig({ storage_plugin: pluginRef, "plugin.directory": directory });
  const storage = await Effect.runPromise(
    openStorage(config.storage_plugin, { dataDir, options: config.plugin, natsServers: "", natsOptions: {} }),
  );
  return {
    storage,
    read: async (sender, ref, kind) => {
      const entry = (await manifestOf(directory).catch(() => ({}) as Record<string, ManifestEntry>))[
        `${ref.sg}/${ref.vg}/${ref.tp}/${partFileName(ref.name, kind)}`
      ];
      return entry
        ? new Uint8Array(await readFile(join(directory, sender, ref.sg, ref.vg, ref.tp, partFileName(ref.name, kind))))
        : undefined;
    },
    // Lines of "<epoch>:<offset> <record>", one per record applied.
    schemaKept: async (sender) =>
      (await readFile(join(directory, sender, "schema.mlog.bin.txt"), "utf8"))
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[1] ?? ""),
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

describe("loading a third-party storage", () => {
  test("by package name, from node_modules of the directory the receiver runs in", async () => {
    const cwd = join(root, "operator");
    await mkdir(join(cwd, "node_modules"), { recursive: true });
    await symlink(pluginDir, join(cwd, "node_modules", "tsync-example-storage"), "dir");
    const factory = await Effect.runPromise(resolveStorageFactory("tsync-example-storage", cwd));
    const storage = await Effect.runPromise(
      factory({ dataDir: cwd, options: { directory: join(cwd, "files") }, natsServers: "", natsOptions: {} }),
    );
    expect(storage.name).toBe("example-directory");
    await Effect.runPromise(storage.close);
  });

  test("a missing plugin key stops the receiver's storage from opening with the plugin's own message", async () => {
    const exit = await Effect.runPromiseExit(
      openStorage(receiverConfig({ storage_plugin: pluginRef }).storage_plugin, {
        dataDir: root,
        options: {},
        natsServers: "",
        natsOptions: {},
      }),
    );
    expect(Exit.isFailure(exit)).toBe(true);
    if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("plugin.directory is required");
  });

  test("a module that is not a storage plugin is refused with a reason", async () => {
    const exit = await Effect.runPromiseExit(resolveStorageFactory(fileURLToPath(new URL("./e2e.ts", import.meta.url))));
    expect(Exit.isFailure(exit)).toBe(true);
    if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("exports neither createStorage nor a default function");
  });
});

describe("example plugin end to end", () => {
  let server: TestNatsServer;
  beforeAll(async () => {
    server = await startTestNatsServer();
  });
  afterAll(async () => {
    await server.cleanup();
  });

  test("the receiver loads it from storage_plugin=<path> with its plugin.* keys; files and manifest follow the edge", async () => {
    const directory = join(root, "plugin-files");
    const pair = await openPair(server, root, { storage_plugin: pluginRef, "plugin.directory": directory, "plugin.label": "plant-7" });
    try {
      const first = await pair.round();
      expect(roundSucceeded(first), JSON.stringify(first)).toBe(true);
      const manifest = await manifestOf(directory);
      for (const f of pair.files) {
        const key = `${f.sg}/${f.vg}/${f.tp}/${f.name}`;
        expect(manifest[key]).toMatchObject({ sender: pair.sender.senderId, kind: "tsfile", label: "plant-7" });
        expect(manifest[key]?.devices.length).toBeGreaterThan(0);
        expect(await readFile(join(directory, pair.sender.senderId, key))).toEqual(await readFile(f.path));
      }
      const [gone] = pair.files;
      await deleteOnEdge(gone!);
      expect((await pair.round()).deleted).toHaveLength(1);
      expect(Object.keys(await manifestOf(directory))).not.toContain(`${gone!.sg}/${gone!.vg}/${gone!.tp}/${gone!.name}`);
    } finally {
      await pair.close();
    }
  });
});
