// The confirmed journal read a chunk at a time into the compact set: old journals load, torn tails are cut, damage stops start-up.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { WorkDir } from "../../src/actors/sender/workDir.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await tempRoot("tsync-confirmed-journal-");
});
afterAll(async () => {
  await removeAll(root);
});

const ref = (i: number) => ({ sg: "root.sg1", vg: "0", tp: String(i % 7), name: `${1_700_000_000_000 + i}-${i}-0-0.tsfile` });
const digest = (i: number) => i.toString(16).padStart(64, "0");

/** A record as every version of the sender has written it. */
const add = (i: number) =>
  JSON.stringify({
    op: "add",
    unit: {
      ref: ref(i),
      parts: [
        { kind: "resource", size: 100 + i, sha256: digest(i), mtimeMs: 1_733_392_000_000.25 + i },
        { kind: "tsfile", size: 5000 + i, sha256: digest(i + 1), mtimeMs: 1_733_392_000_000.75 + i },
      ],
    },
  });
const del = (i: number) => JSON.stringify({ op: "del", key: `root.sg1/0/${i % 7}/${1_700_000_000_000 + i}-${i}-0-0.tsfile` });

const workWith = async (journal: string) => {
  const dir = join(root, String(n++));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "confirmed.jsonl"), journal);
  return dir;
};

const open = async (dir: string) => {
  const logged: string[] = [];
  const work = await WorkDir.open(dir, "edge1", (l) => logged.push(l));
  return { work, logged };
};

describe("confirmed journal", () => {
  test("an existing journal of several MiB loads whole, deletions applied, and is left as it was when it is mostly live", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 12_000; i++) lines.push(add(i));
    for (let i = 0; i < 12_000; i += 3) lines.push(del(i));
    const journal = lines.join("\n") + "\n";
    expect(journal.length).toBeGreaterThan(3 * 2 ** 20); // several read chunks
    const dir = await workWith(journal);
    const { work } = await open(dir);
    try {
      expect(work.confirmed.size).toBe(8000);
      expect(work.confirmed.get(ref(3))).toBeUndefined();
      expect(work.confirmed.get(ref(11_999))?.parts[1]).toEqual({
        kind: "tsfile",
        size: 5000 + 11_999,
        sha256: digest(12_000),
        mtimeMs: 1_733_392_000_000.75 + 11_999,
      });
    } finally {
      await work.close();
    }
    expect(await readFile(join(dir, "confirmed.jsonl"), "utf8")).toBe(journal);
  });

  test("a journal mostly of dead records is compacted on open, to the same records", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 1500; i++) lines.push(add(i), del(i));
    lines.push(add(5), add(6));
    const dir = await workWith(lines.join("\n") + "\n");
    await (await open(dir)).work.close();
    const after = (await readFile(join(dir, "confirmed.jsonl"), "utf8")).trim().split("\n");
    expect(after.sort()).toEqual([add(5), add(6)].sort());
    const { work } = await open(dir);
    expect([...work.confirmed.units()].map((u) => u.ref.name).sort()).toEqual([ref(5).name, ref(6).name]);
    await work.close();
  });

  test("a torn last line, past the first read chunk, is cut off and told; the lines before it all load", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 4000; i++) lines.push(add(i));
    const whole = lines.join("\n") + "\n";
    const dir = await workWith(whole + add(4000).slice(0, 50));
    const { work, logged } = await open(dir);
    await work.close();
    expect(work.confirmed.size).toBe(4000);
    expect(logged.join("\n")).toContain("line 4001");
    expect(await readFile(join(dir, "confirmed.jsonl"), "utf8")).toBe(whole);
  });

  test("a last line that is not JSON, though ended, is a torn append too; appends after it start a line of their own", async () => {
    const dir = await workWith(`${add(1)}\n{"op":"ad\n`);
    const { work, logged } = await open(dir);
    expect(logged.join("\n")).toContain("line 2");
    await work.confirm({ ref: ref(2), parts: [{ kind: "tsfile", size: 1, sha256: digest(2), mtimeMs: 3 }] });
    await work.close();
    const again = await open(dir);
    expect([...again.work.confirmed.units()].map((u) => u.ref.name).sort()).toEqual([ref(1).name, ref(2).name]);
    await again.work.close();
  });

  test("a damaged line before the last stops start-up naming the file and the line, wherever the read chunks fall", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++) lines.push(add(i));
    lines.splice(4321, 0, '{"op":"add","unit":');
    const dir = await workWith(lines.join("\n") + "\n");
    await expect(WorkDir.open(dir, "edge1", () => undefined)).rejects.toThrow(`${join(dir, "confirmed.jsonl")}, line 4322`);
    // And it left no lock behind.
    await writeFile(join(dir, "confirmed.jsonl"), "");
    await (await open(dir)).work.close();
  });

  test("a record of the wrong shape stops start-up too", async () => {
    const dir = await workWith(`${add(1)}\n${JSON.stringify({ op: "add", unit: { ref: ref(2), parts: [{ kind: "exe" }] } })}\n${add(3)}\n`);
    await expect(WorkDir.open(dir, "edge1", () => undefined)).rejects.toThrow("line 2: not a record of this log");
  });

  test("what is confirmed survives a reopen", async () => {
    const dir = await workWith("");
    const { work } = await open(dir);
    await work.confirm({ ref: ref(9), parts: [{ kind: "tsfile", size: 9, sha256: digest(9), mtimeMs: 9.5 }] });
    await work.forget(ref(9));
    await work.confirm({ ref: ref(10), parts: [{ kind: "tsfile", size: 10, sha256: digest(10), mtimeMs: 10.5 }] });
    await work.close();
    const again = await open(dir);
    expect([...again.work.confirmed.units()]).toEqual([
      { ref: ref(10), parts: [{ kind: "tsfile", size: 10, sha256: digest(10), mtimeMs: 10.5 }] },
    ]);
    await again.work.close();
  });
});
