// What a sender is told of a failed step (src/actors/receiver/safeFailure.ts): the unit view of
// what test/security/attacks/noLocalPaths.test.ts checks end to end. No server needed.
import { Effect } from "effect";
import { describe, expect, test } from "vitest";
import { RegistryUnavailable } from "../../src/actors/receiver/ownership.js";
import {
  forLog,
  forSender,
  ReceiverFailure,
  revealsLocalDetail,
  safely,
  schemaSafeStorage,
} from "../../src/actors/receiver/safeFailure.js";
import { OutsideDataDirError, StagingFullError, StagingIoError } from "../../src/actors/receiver/staging.js";
import { StagingQuotaError } from "../../src/actors/receiver/stagingHygiene.js";
import { StorageError, type Storage } from "../../src/plugins/storage.js";

const errno = (code: string, message: string) => Object.assign(new Error(message), { code });

describe("revealsLocalDetail: what must not reach a sender", () => {
  test.each([
    ["an absolute path", "open '/var/lib/tsync/x.part'"],
    ["an absolute path at the start", "/srv/data failed"],
    ["an absolute path in quotes", 'cannot read "/etc/passwd"'],
    ["a home-relative path", "see ~/tsync/conf"],
    ["a file URL", "at file:///srv/tsync/dist/x.js"],
    ["a Windows path", "open C:\\tsync\\data failed"],
    ["a Windows path with slashes", "open D:/tsync failed"],
    ["a UNC path", "open \\\\server\\share failed"],
    ["the receiver's own state", "bad line in .tsync/journal.jsonl"],
    ["the receiver's own state, Windows style", "bad .tsync\\catalog.jsonl"],
    ["a stack frame", "Error: x\n    at load (dist/receiver.js:10:5)"],
    ["a native stack frame", "Error: x\n    at Array.map (native)"],
    ["an anonymous stack frame", "Error: x\n    at <anonymous>)"],
  ])("%s is caught", (_what, text) => {
    expect(revealsLocalDetail(text)).toBe(true);
  });

  test.each([
    ["a file as the protocol names it", "root.sg1/0/0/1-1-0-0.tsfile (tsfile) is 12 bytes; the receiver accepts at most 10"],
    ["a storage group with dots", "storage group root.a.b is owned by sender s1"],
    ["a plain message", "sync is disabled on this receiver (is_sync_enable=false)"],
    ["a ratio", "3/4 done"],
    ["the word at in a sentence", "refused at 10 of 20 bytes"],
  ])("%s passes", (_what, text) => {
    expect(revealsLocalDetail(text)).toBe(false);
  });

  test("the data directory is caught wherever it appears, and a one-letter one is ignored", () => {
    expect(revealsLocalDetail("under data-42 something broke", "data-42")).toBe(true);
    expect(revealsLocalDetail("under data-42 something broke", "data-43")).toBe(false);
    expect(revealsLocalDetail("a b c", "a")).toBe(false);
  });
});

describe("forSender: the failure as the sender sees it", () => {
  test("errors written for senders pass as they are", () => {
    for (const e of [
      new StagingIoError("root.a/0/0/1-1-0-0.tsfile (tsfile): write failed: EIO"),
      new StagingFullError("the receiver's staging disk is full"),
      new StagingQuotaError("s1", "root.a/0/0/x (tsfile)", 10, 5, 1, 12),
      new OutsideDataDirError("refusing x: its path leads outside staging"),
      new RegistryUnavailable("the storage-group ownership registry cannot answer now; try again"),
    ])
      expect(forSender("offer", e, "/data")).toBe(e);
  });

  test("a storage error passes unless its message shows something local", () => {
    const clean = new StorageError({ op: "load", message: "the exec plugin's load command exited 3" });
    expect(forSender("load", clean)).toBe(clean);
    const leaky = new StorageError({ op: "load", message: "cannot write /srv/iotdb/data/x.tsfile" });
    const told = forSender("load", leaky);
    expect(told).toBeInstanceOf(ReceiverFailure);
    expect(told.message).toBe("internal error in load; see the receiver log");
    const leakyDataDir = new StorageError({ op: "load", message: "cannot write under store-7" });
    expect(forSender("load", leakyDataDir, "store-7")).toBeInstanceOf(ReceiverFailure);
  });

  test("a Node error is told by its errno code, its own or its cause's, never by its message", () => {
    const own = forSender("commit", errno("ENOSPC", "ENOSPC: no space left on device, write '/srv/x'"));
    expect(own).toBeInstanceOf(ReceiverFailure);
    expect(own.message).toBe("commit failed: ENOSPC");
    const wrapped = new StorageError({ op: "load", message: "rename /srv/a /srv/b", cause: errno("EXDEV", "cross-device") });
    expect(forSender("load", wrapped).message).toBe("load failed: EXDEV");
  });

  test("a code that is not an errno code, or none, is an internal error naming the operation", () => {
    expect(forSender("put", errno("ERR_SOMETHING_ELSE", "/srv/x")).message).toBe("internal error in put; see the receiver log");
    expect(forSender("put", errno("enoent", "/srv/x")).message).toBe("internal error in put; see the receiver log");
    expect(forSender("delete", new Error("/srv/x")).message).toBe("internal error in delete; see the receiver log");
    expect(forSender("hello", "a thrown string").message).toBe("internal error in hello; see the receiver log");
    expect(forSender("hello", undefined).message).toBe("internal error in hello; see the receiver log");
  });
});

describe("forLog: the failure in full for the operator", () => {
  test("the stack, Node's fields and every cause", () => {
    const root = errno("EACCES", "EACCES: permission denied, open '/srv/x'");
    const top = new Error("load failed", { cause: root });
    const text = forLog(top);
    expect(text).toContain("Error: load failed");
    expect(text).toContain("caused by: Error: EACCES: permission denied, open '/srv/x'");
    expect(text).toContain("code: 'EACCES'");
    expect(text).toMatch(/\n\s+at /);
    expect(text).not.toContain("message:");
  });

  test("a value that is not an Error is shown as it is; a chain of causes stops at four", () => {
    expect(forLog({ why: "odd" })).toBe("{ why: 'odd' }");
    expect(forLog("plain")).toBe("'plain'");
    let e: Error = new Error("level 0");
    for (let i = 1; i <= 6; i++) e = new Error(`level ${i}`, { cause: e });
    const text = forLog(e);
    expect(text.match(/caused by:/g)).toHaveLength(4);
    expect(text).toContain("level 2");
    expect(text).not.toContain("level 1\n");
  });

  test("an error without a stack is shown by its name and message", () => {
    const e = new Error("bare");
    delete e.stack;
    expect(forLog(e)).toBe("Error: bare");
  });
});

describe("safely and schemaSafeStorage: the wrappers the session's actors go through", () => {
  test("a rejection is logged in full and rethrown as the sender may see it; a result passes", async () => {
    const lines: string[] = [];
    const scope = { session: "session s-1", log: (l: string) => lines.push(l), dataDir: "/srv/data" };
    await expect(safely(scope, "commit", async (n: number) => n + 1)(1)).resolves.toBe(2);
    expect(lines).toEqual([]);
    const failing = safely(scope, "commit", async () => {
      throw errno("EIO", "EIO: i/o error, write '/srv/data/.tsync/staging/x'");
    });
    await expect(failing(undefined)).rejects.toThrow(/^commit failed: EIO$/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^session s-1: commit failed: Error: EIO: i\/o error, write '\/srv\/data\/\.tsync\/staging\/x'/);
  });

  test("a schema batch's leaky failure is replaced and logged; a clean one passes untouched", async () => {
    const lines: string[] = [];
    const scope = { session: "session s-2", log: (l: string) => lines.push(l) };
    const failWith = (e: StorageError) =>
      schemaSafeStorage({ applySchema: () => Effect.fail(e) } as unknown as Storage, scope).applySchema("s", []);
    const clean = new StorageError({ op: "applySchema", message: "the schema command exited 3" });
    expect(await Effect.runPromise(Effect.flip(failWith(clean)))).toBe(clean);
    expect(lines).toEqual([]);
    const leaky = new StorageError({ op: "applySchema", message: "cannot open /srv/iotdb/schema" });
    const told = await Effect.runPromise(Effect.flip(failWith(leaky)));
    expect(told).toBeInstanceOf(StorageError);
    expect(told.message).toBe("internal error in schema; see the receiver log");
    expect(told.op).toBe("applySchema");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("session s-2: schema failed: ");
    expect(lines[0]).toContain("cannot open /srv/iotdb/schema");
  });
});
