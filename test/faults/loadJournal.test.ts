// The receiver's load journal (src/actors/receiver/journal.ts) on a real disk: what it answers,
// what survives a reopen, and that reopening compacts it to what is stored.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { Journal } from "../../src/actors/receiver/journal.js";

const ref = (sg: string, name = "1-1-0-0.tsfile") => ({ sg, vg: "0", tp: "0", name });
const part = (sender: string, sg: string, kind: "tsfile" | "resource" | "mods" = "tsfile", name?: string) => ({
  sender,
  ref: ref(sg, name),
  kind,
  size: kind === "tsfile" ? 100 : 10,
  sha256: `${sender}-${kind}`.padEnd(64, "0"),
});

let dir: string;
let path: string;
const lines: string[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsync-journal-"));
  path = join(dir, "state", "journal.jsonl");
  lines.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const open = () => Journal.open(path, (l) => lines.push(l));
const records = async () =>
  (await readFile(path, "utf8"))
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as { op: string; sender: string });

describe("the receiver's load journal", () => {
  test("answers what each sender loaded, by part, and who loaded a file", async () => {
    const j = await open();
    expect(j.file).toBe(path);
    expect(j.loadersOf(ref("root.a"))).toEqual([]);
    await j.recordLoaded(part("s2", "root.a"));
    await j.recordLoadedAll([part("s1", "root.a", "resource"), part("s1", "root.a")]);
    expect(j.find("s1", ref("root.a"), "tsfile")).toMatchObject({ sender: "s1", size: 100, sha256: part("s1", "root.a").sha256 });
    expect(j.find("s1", ref("root.a"), "resource")?.size).toBe(10);
    expect(j.find("s1", ref("root.a"), "mods")).toBeUndefined();
    expect(j.find("s3", ref("root.a"), "tsfile")).toBeUndefined();
    expect(j.find("s1", ref("root.b"), "tsfile")).toBeUndefined();
    expect(j.find("s1", ref("root.a", "2-2-0-0.tsfile"), "tsfile")).toBeUndefined();
    // Sorted, each sender once however many parts it loaded.
    expect(j.loadersOf(ref("root.a"))).toEqual(["s1", "s2"]);
    expect(j.all()).toHaveLength(3);
    await j.close();
  });

  test("parts loaded together share one time; each part keeps its own", async () => {
    const j = await open();
    const before = Date.now();
    await j.recordLoadedAll([part("s1", "root.a", "resource"), part("s1", "root.a")]);
    const [a, b] = j.all();
    expect(a?.at).toBe(b?.at);
    expect(a?.at).toBeGreaterThanOrEqual(before);
    expect(a?.at).toBeLessThanOrEqual(Date.now());
    await j.close();
  });

  test("a deletion forgets every part of that sender's file and only that", async () => {
    const j = await open();
    await j.recordLoadedAll([part("s1", "root.a", "resource"), part("s1", "root.a"), part("s1", "root.a", "mods")]);
    await j.recordLoaded(part("s2", "root.a"));
    await j.recordLoaded(part("s1", "root.b"));
    await j.recordDeleted("s1", ref("root.a"));
    for (const kind of ["tsfile", "resource", "mods"] as const) expect(j.find("s1", ref("root.a"), kind)).toBeUndefined();
    expect(j.find("s2", ref("root.a"), "tsfile")).toBeDefined();
    expect(j.find("s1", ref("root.b"), "tsfile")).toBeDefined();
    expect(j.loadersOf(ref("root.a"))).toEqual(["s2"]);
    await j.recordDeleted("s2", ref("root.a"));
    expect(j.loadersOf(ref("root.a"))).toEqual([]);
    // Deleting what was never loaded changes nothing.
    await j.recordDeleted("s9", ref("root.z"));
    expect(j.all()).toHaveLength(1);
    await j.close();
  });

  test("what was recorded is there after a reopen, compacted to the parts still loaded", async () => {
    const j = await open();
    await j.recordLoadedAll([part("s1", "root.a", "resource"), part("s1", "root.a")]);
    await j.recordLoaded(part("s2", "root.b"));
    await j.recordDeleted("s1", ref("root.a"));
    await j.close();
    expect((await records()).map((r) => r.op)).toEqual(["loaded", "loaded", "loaded", "deleted"]);

    const again = await open();
    expect(again.find("s2", ref("root.b"), "tsfile")).toMatchObject({ size: 100 });
    expect(again.find("s1", ref("root.a"), "tsfile")).toBeUndefined();
    expect(again.loadersOf(ref("root.a"))).toEqual([]);
    expect(again.loadersOf(ref("root.b"))).toEqual(["s2"]);
    await again.close();
    expect(await records()).toEqual([expect.objectContaining({ op: "loaded", sender: "s2" })]);
  });

  test("a damaged journal is refused, naming the file, rather than read as empty", async () => {
    const j = await open();
    await j.recordLoaded(part("s1", "root.a"));
    await j.close();
    await writeFile(path, `${await readFile(path, "utf8")}{"op":"loaded","sender":"s2"}\n{"op":"nonsense"}\n`);
    await expect(open()).rejects.toThrow(/journal\.jsonl/);
  });
});
