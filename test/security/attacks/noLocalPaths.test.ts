// No reply carries a path of the receiver's machine. Over-long names are refused as names (with
// the limit in bytes, as the filesystem counts), and when the filesystem fails on a file the reply
// names the file as the protocol does (sg/vg/tp/name) while the receiver's log gets the full path.
import { createHash } from "node:crypto";
import { mkdir, open, readFile, rm, writeFile, type FileHandle } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { catalogPath, Receiver } from "../../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../../src/actors/receiver/validateTsFile.js";
import { encodeJson } from "../../../src/protocol/messages.js";
import { maxTsFileNameBytes } from "../../../src/protocol/names.js";
import { Code } from "../../../src/protocol/status.js";
import { ChunkHeader, SchemaHeader } from "../../../src/protocol/subjects.js";
import { receiverConfig } from "../../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../../harness/natsServer.js";
import { removeAll, tempRoot } from "../../harness/syncPair.js";
import { addSealedFile, rawClient, replyOf, sayHello, type AnyReply } from "../kit.js";

const group = "paths";
const senderId = "pathy";

let server: TestNatsServer;
let root: string;
let centre: string;
let receiver: Receiver;
let nc: NatsConnection;
let prefix: string;
let sessionId: string;
const logged: string[] = [];
const replies: Array<{ what: string; reply: AnyReply }> = [];

beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-paths-");
  centre = join(root, "centre");
  receiver = await Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      receiver_data_directory: centre,
      nats_url: server.url,
      nats_monitor_url: server.monitorUrl,
      receiver_group: group,
    }),
    validateTsFile,
    log: (line) => logged.push(line),
  });
  nc = await rawClient(server.url, senderId);
  const hello = await sayHello(nc, group, senderId);
  expect(hello.code, hello.message).toBe(Code.ok);
  prefix = String(hello["sessionPrefix"]);
  sessionId = String(hello["sessionId"]);
});

afterAll(async () => {
  await nc?.close();
  await receiver?.stop();
  await server?.cleanup();
  await removeAll(root);
});

type Ask = (what: string, op: string, body: Uint8Array | Record<string, unknown>, h?: Record<string, string>) => Promise<AnyReply>;

/** Asks in the session of `s` (another sender's, another receiver's); every reply is kept for the last check. */
const askIn =
  (s: () => { readonly nc: NatsConnection; readonly prefix: string }): Ask =>
  async (what, op, body, h) => {
    const hdrs = h ? headers() : undefined;
    for (const [k, v] of Object.entries(h ?? {})) hdrs?.set(k, v);
    const data = body instanceof Uint8Array ? body : encodeJson(body);
    const reply = replyOf(await s().nc.request(`${s().prefix}.${op}`, data, { timeout: 15_000, ...(hdrs ? { headers: hdrs } : {}) }));
    replies.push({ what, reply });
    return reply;
  };

const ask: Ask = askIn(() => ({ nc, prefix }));

/** A slash that starts a path rather than separating the protocol's sg/vg/tp/name. */
const absolutePath = /(^|[^\p{L}\p{N}_.\-/])\/[\p{L}\p{N}_.\-]/u;

const expectNoLocalPath = (what: string, r: AnyReply): void => {
  const text = JSON.stringify(r);
  expect(text, what).not.toContain(centre);
  expect(text, what).not.toContain(root);
  expect(text, what).not.toContain(tmpdir());
  expect(text, what).not.toContain("/tmp");
  expect(r.message, what).not.toMatch(absolutePath);
  // No line of a stack trace ("    at f (file:1:2)").
  expect(r.message, what).not.toMatch(/(^|\n)\s*at\s/);
  expect(text, what).not.toMatch(/\.(ts|js|mjs):\d+:\d+/);
};

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const ascii = (bytes: number, suffix = ".tsfile") => "n".repeat(bytes - suffix.length) + suffix;
const ref = (sg: string, name: string) => ({ sg, vg: "0", tp: "0", name });

describe("over-long names are refused as names, in bytes", () => {
  const tooLong: ReadonlyArray<[string, Record<string, string>]> = [
    ["a 256-byte file name", ref("root.long", ascii(256))],
    ["a 255-byte file name (no room for .resource beside it)", ref("root.long", ascii(255))],
    [`a ${maxTsFileNameBytes + 1}-byte file name`, ref("root.long", ascii(maxTsFileNameBytes + 1))],
    ["a 4000-byte file name", ref("root.long", ascii(4000))],
    ["a 107-character file name of 307 bytes", ref("root.long", `${"工".repeat(100)}.tsfile`)],
    ["a 256-byte storage group", ref("g".repeat(256), "1-1-0-0.tsfile")],
    ["a 4000-byte storage group", ref("g".repeat(4000), "1-1-0-0.tsfile")],
    ["an 86-character storage group of 258 bytes", ref("工".repeat(86), "1-1-0-0.tsfile")],
  ];

  test.each(tooLong)("%s: badName that says so, no path", async (what, fileRef) => {
    const offer = await ask(what, "offer", { ...fileRef, kind: "resource", size: 10 });
    expect(offer.code, offer.message).toBe(Code.badName);
    expect(offer.message).toMatch(/longer than \d+ bytes \(it has \d+\)/);
    expect(offer.message.length).toBeLessThan(400);
    const del = await ask(what, "delete", fileRef);
    expect(del.code, del.message).toBe(Code.badName);
    const load = await ask(what, "load", { ...fileRef, parts: [{ kind: "tsfile", size: 1, sha256: "0".repeat(64) }] });
    expect(load.code, load.message).toBe(Code.badName);
    for (const r of [offer, del, load]) expectNoLocalPath(what, r);
  });

  test(`the longest names allowed are stored: a 255-byte storage group, a ${maxTsFileNameBytes}-byte file name with every side file`, async () => {
    for (const kind of ["resource", "tsfile", "mods", "mods2"]) {
      const r = await ask(`longest ${kind}`, "offer", { ...ref("g".repeat(255), ascii(maxTsFileNameBytes)), kind, size: 4 });
      expect(r.code, r.message).toBe(Code.start);
      const h = headers();
      h.set(ChunkHeader.file, String(r["fileId"]));
      h.set(ChunkHeader.offset, "0");
      const bytes = new TextEncoder().encode("abcd");
      const c = replyOf(await nc.request(`${prefix}.chunk`, bytes, { timeout: 15_000, headers: h }));
      expect(c.code, c.message).toBe(Code.ok);
      if (kind !== "tsfile") {
        const done = await ask(`longest ${kind} commit`, "commit", { fileId: r["fileId"], size: 4, sha256: sha256(bytes) });
        expect(done.code, done.message).toBe(Code.ok);
      }
    }
  });
});

describe("when the filesystem fails on a file, the reply names the file, the log has the path", () => {
  test("staging cannot make the storage group's folder", async () => {
    const blocked = join(centre, ".tsync", "staging", senderId, "root.blocked");
    await mkdir(join(centre, ".tsync", "staging", senderId), { recursive: true });
    await writeFile(blocked, "a file where a folder should be");
    const r = await ask("staging blocked", "offer", { ...ref("root.blocked", "1-1-0-0.tsfile"), kind: "resource", size: 10 });
    expect(r.code).toBeGreaterThanOrEqual(40);
    expect(r.message).toContain("root.blocked/0/0/1-1-0-0.tsfile (resource)");
    expect(r.message).toMatch(/ENOTDIR|EEXIST/);
    expectNoLocalPath("staging blocked", r);
    expect(logged.join("\n")).toContain(blocked);
  });

  /** Sends a real sealed TsFile and its .resource, verified, and asks for the load. */
  const transfer = async (sg: string, seed: number, via: Ask = ask): Promise<AnyReply> => {
    const file = await addSealedFile(join(root, "edge"), sg, "1000-1-0-0.tsfile", seed);
    const parts: Array<{ kind: string; size: number; sha256: string }> = [];
    for (const [kind, path] of [
      ["resource", `${file.path}.resource`],
      ["tsfile", file.path],
    ] as const) {
      const bytes = await readFile(path);
      const offer = await via(`${sg} ${kind}`, "offer", { ...ref(file.sg, file.name), kind, size: bytes.length, sha256: sha256(bytes) });
      expect(offer.code, offer.message).toBe(Code.start);
      const chunk = await via(`${sg} ${kind} chunk`, "chunk", bytes, {
        [ChunkHeader.file]: String(offer["fileId"]),
        [ChunkHeader.offset]: "0",
      });
      expect(chunk.code, chunk.message).toBe(Code.ok);
      const commit = await via(`${sg} ${kind} commit`, "commit", { fileId: offer["fileId"], size: bytes.length, sha256: sha256(bytes) });
      expect(commit.code, commit.message).toBe(Code.ok);
      parts.push({ kind, size: bytes.length, sha256: sha256(bytes) });
    }
    return via(`${sg} load`, "load", { ...ref(file.sg, file.name), parts });
  };

  test("the storage cannot place a verified file", async () => {
    await mkdir(join(centre, "sequence"), { recursive: true });
    await writeFile(join(centre, "sequence", "root.placed"), "a file where a folder should be");
    const load = await transfer("root.placed", 7);
    expect(load.code, load.message).toBe(Code.storageFailed);
    expect(load.message).toContain("root.placed/0/0/1000-1-0-0.tsfile");
    expectNoLocalPath("placed load", load);
    expect(logged.join("\n")).toContain(join(centre, "sequence", "root.placed"));
  });

  test("a delete finds a folder where the loaded file was", async () => {
    const loaded = await transfer("root.dir", 8);
    expect(loaded.code, loaded.message).toBe(Code.ok);
    const landed = join(centre, "sequence", "root.dir", "0", "0", "1000-1-0-0.tsfile");
    await rm(landed);
    await mkdir(join(landed, "inside"), { recursive: true });
    const r = await ask("delete of a folder", "delete", ref("root.dir", "1000-1-0-0.tsfile"));
    expect(r.code, r.message).toBe(Code.storageFailed);
    expect(r.message).toContain("root.dir/0/0/1000-1-0-0.tsfile");
    expectNoLocalPath("delete of a folder", r);
    expect(logged.join("\n")).toContain(landed);
  });

  test("the storage cannot append to the sender's schema log", async () => {
    await mkdir(join(centre, "schema"), { recursive: true });
    await writeFile(join(centre, "schema", senderId), "a file where a folder should be");
    const bytes = new TextEncoder().encode("2,root.sg.d.s,1,2,0\n");
    const r = await ask("schema blocked", "schema", bytes, {
      [SchemaHeader.file]: "mlog.txt",
      [SchemaHeader.epoch]: "0",
      [SchemaHeader.offset]: "0",
      [SchemaHeader.sha256]: sha256(bytes),
    });
    expect(r.code, r.message).toBe(Code.storageFailed);
    expectNoLocalPath("schema blocked", r);
    expect(logged.join("\n")).toContain(join(centre, "schema", senderId));
  });

  /** The receiver's log lines of one session's failed `operation`, as one text. */
  const failuresLogged = (session: string, operation: string): string =>
    logged.filter((l) => l.startsWith(`session ${session}: ${operation} failed: `)).join("\n");
  const stackLine = /\n\s+at \S/;

  test("the catalog cannot be appended to: the load is answered with the errno code, the log has the path and the stack", async () => {
    const catalog = catalogPath(centre);
    await rm(catalog, { force: true });
    await mkdir(join(catalog, "a folder where the catalog should be"), { recursive: true });
    try {
      const load = await transfer("root.catalog", 9);
      expect(load.code, load.message).toBe(Code.storageFailed);
      expect(load.message).toBe("load failed: EISDIR");
      expectNoLocalPath("catalog unwritable", load);
    } finally {
      await rm(catalog, { recursive: true, force: true });
    }
    const log = failuresLogged(sessionId, "load");
    expect(log).toContain(catalog);
    expect(log).toMatch(stackLine);
  });

  test("the journal cannot be appended to: the load is answered with the errno code, the log has the detail", async () => {
    // The journal appends through a handle opened at start, so no path trick reaches it: its
    // handle is swapped for a read-only one of the same file, and every append fails (EBADF).
    const journal = (receiver.core.journal as unknown as { log: { handle: FileHandle; readonly file: string } }).log;
    const writable = journal.handle;
    const readOnly = await open(journal.file, "r");
    journal.handle = readOnly;
    try {
      const load = await transfer("root.journal", 10);
      expect(load.code, load.message).toBe(Code.storageFailed);
      expect(load.message).toBe("load failed: EBADF");
      expectNoLocalPath("journal unwritable", load);
    } finally {
      journal.handle = writable;
      await readOnly.close();
    }
    const log = failuresLogged(sessionId, "load");
    expect(log).toContain("EBADF: bad file descriptor, write");
    expect(log).toMatch(stackLine);
  });

  describe("a storage plugin whose failures carry local paths and stacks", () => {
    const pluginGroup = "paths-plugin";
    const plugged = "plugged";
    let pluginCentre: string;
    let pluginState: string;
    let pluginReceiver: Receiver | undefined;
    let pnc: NatsConnection | undefined;
    let pprefix: string;
    let psession: string;
    const pask = askIn(() => ({ nc: pnc!, prefix: pprefix }));

    /**
     * A third-party storage (plain ESM, written at test time) that tells its failures the way
     * careless plugins do: with its local paths, Node's errors as they are, a stack in a message.
     */
    const leakyPlugin = (effectUrl: string): string => `
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Data, Effect } from ${JSON.stringify(effectUrl)};
class StorageError extends Data.TaggedError("StorageError") {}
export const createStorage = (ctx) => {
  const state = join(ctx.dataDir, "plugin-state");
  const load = (req) => {
    const sg = req.ref.sg;
    if (sg === "root.thrown") throw new Error("cannot write " + join(state, sg, req.ref.name) + ": read-only file system");
    if (sg === "root.errno") return Effect.tryPromise({ try: () => readFile(join(state, "missing", sg)), catch: (e) => e });
    if (sg === "root.stack") return Effect.fail(new StorageError({ op: "load", message: "refused: " + new Error("inside the plugin").stack }));
    if (sg === "root.polite") return Effect.fail(new StorageError({ op: "load", message: "IoTDB refused " + sg + "/0/0/" + req.ref.name + ": schema mismatch" }));
    return Effect.void;
  };
  return Effect.succeed({
    name: "leaky",
    load,
    remove: (_sender, ref) => Effect.fail(new StorageError({ op: "remove", message: "cannot remove " + join(state, ref.sg, ref.name) })),
    has: () => Effect.succeed(false),
    applySchema: () => Effect.fail(new StorageError({ op: "applySchema", message: "cannot append to " + join(state, "schema.log") })),
    close: Effect.void,
  });
};
`;

    beforeAll(async () => {
      pluginCentre = join(root, "plugin-centre");
      pluginState = join(pluginCentre, "plugin-state");
      const plugin = join(root, "leaky-storage.mjs");
      // The plugin takes the same copy of effect as the receiver, as a real plugin's peer dependency would.
      await writeFile(plugin, leakyPlugin(pathToFileURL(createRequire(import.meta.url).resolve("effect")).href));
      pluginReceiver = await Receiver.start({
        config: receiverConfig({
          is_sync_enable: "true",
          receiver_data_directory: pluginCentre,
          nats_url: server.url,
          nats_monitor_url: server.monitorUrl,
          receiver_group: pluginGroup,
          storage_plugin: plugin,
        }),
        validateTsFile,
        log: (line) => logged.push(line),
      });
      pnc = await rawClient(server.url, plugged);
      const hello = await sayHello(pnc, pluginGroup, plugged);
      expect(hello.code, hello.message).toBe(Code.ok);
      pprefix = String(hello["sessionPrefix"]);
      psession = String(hello["sessionId"]);
    });

    afterAll(async () => {
      await pnc?.close();
      await pluginReceiver?.stop();
    });

    test.each([
      [
        "throws an Error naming its file",
        "root.thrown",
        11,
        "internal error in load; see the receiver log",
        "read-only file system",
        "plugin-centre/plugin-state/root.thrown/",
      ],
      [
        "fails with Node's ENOENT",
        "root.errno",
        12,
        "load failed: ENOENT",
        "ENOENT: no such file or directory",
        "plugin-centre/plugin-state/missing/root.errno",
      ],
      [
        "puts a stack in its StorageError",
        "root.stack",
        13,
        "internal error in load; see the receiver log",
        "inside the plugin",
        "leaky-storage.mjs:",
      ],
    ])("a load the plugin %s: no path in the reply, all of it in the log", async (_how, sg, seed, said, detail, where) => {
      const load = await transfer(sg, seed, pask);
      expect(load.code, load.message).toBe(Code.storageFailed);
      expect(load.message).toBe(said);
      expectNoLocalPath(`plugin ${sg}`, load);
      const log = failuresLogged(psession, "load");
      expect(log).toContain(detail);
      expect(log).toContain(`${root}/${where}`);
    });

    test("a plugin's own message that shows nothing local reaches the sender as it is", async () => {
      const load = await transfer("root.polite", 14, pask);
      expect(load.code, load.message).toBe(Code.storageFailed);
      expect(load.message).toBe("IoTDB refused root.polite/0/0/1000-1-0-0.tsfile: schema mismatch");
    });

    test("a delete and a schema piece the plugin fails on: no path either", async () => {
      const loaded = await transfer("root.ok", 15, pask);
      expect(loaded.code, loaded.message).toBe(Code.ok);
      const del = await pask("plugin delete", "delete", ref("root.ok", "1000-1-0-0.tsfile"));
      expect(del.code, del.message).toBe(Code.storageFailed);
      expect(del.message).toBe("internal error in delete; see the receiver log");
      expectNoLocalPath("plugin delete", del);
      expect(failuresLogged(psession, "delete")).toContain(join(pluginState, "root.ok", "1000-1-0-0.tsfile"));
      const bytes = new TextEncoder().encode("2,root.ok.d.s,1,2,0\n");
      const schema = await pask("plugin schema", "schema", bytes, {
        [SchemaHeader.file]: "mlog.txt",
        [SchemaHeader.epoch]: "0",
        [SchemaHeader.offset]: "0",
        [SchemaHeader.sha256]: sha256(bytes),
      });
      expect(schema.code, schema.message).toBe(Code.storageFailed);
      expect(schema.message).toBe("mlog.txt: internal error in schema; see the receiver log");
      expectNoLocalPath("plugin schema", schema);
      expect(failuresLogged(psession, "schema")).toContain(join(pluginState, "schema.log"));
    });

    test("the plugin's receiver goes on loading", async () => {
      const load = await transfer("root.fine", 16, pask);
      expect(load.code, load.message).toBe(Code.ok);
    });
  });

  test("after all that, the receiver still serves this sender and another", async () => {
    const again = await transfer("root.later", 17);
    expect(again.code, again.message).toBe(Code.ok);
    const other = await rawClient(server.url, "bystander");
    try {
      const hello = await sayHello(other, group, "bystander");
      expect(hello.code, hello.message).toBe(Code.ok);
      const theirs = await transfer(
        "root.theirs",
        18,
        askIn(() => ({ nc: other, prefix: String(hello["sessionPrefix"]) })),
      );
      expect(theirs.code, theirs.message).toBe(Code.ok);
    } finally {
      await other.close();
    }
  });

  test("no reply of this file carried a path", () => {
    expect(replies.length).toBeGreaterThan(30);
    for (const { what, reply } of replies) expectNoLocalPath(what, reply);
  });
});
