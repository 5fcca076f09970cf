import { appendFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Schema } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AppendLog, AppendLogError, readLog, repairLog, repairTail } from "../../src/files/appendLog.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

const Rec = Schema.Union([
  Schema.Struct({ op: Schema.Literal("put"), k: Schema.String, v: Schema.Number }),
  Schema.Struct({ op: Schema.Literal("del"), k: Schema.String }),
]);
type Rec = typeof Rec.Type;

let root: string;
let n = 0;
beforeAll(async () => {
  root = await tempRoot("tsync-appendlog-");
});
afterAll(async () => {
  await removeAll(root);
});

const fresh = async (text?: string): Promise<string> => {
  const dir = join(root, `l${n++}`);
  await mkdir(dir, { recursive: true });
  const file = join(dir, "log.jsonl");
  if (text !== undefined) await writeFile(file, text);
  return file;
};

const lines = (...recs: ReadonlyArray<Rec>) => recs.map((r) => JSON.stringify(r) + "\n").join("");
const a1: Rec = { op: "put", k: "a", v: 1 };
const b2: Rec = { op: "put", k: "b", v: 2 };
const delA: Rec = { op: "del", k: "a" };

/** The error a promise rejects with, to assert on its fields. */
const failure = async (p: Promise<unknown>): Promise<AppendLogError> => {
  const e = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(AppendLogError);
  return e as AppendLogError;
};

describe("replay", () => {
  test("a missing file is an empty log", async () => {
    const file = await fresh();
    expect(await readLog(file, Rec)).toEqual({ records: [], torn: undefined });
    const told: string[] = [];
    const { log, records } = await AppendLog.open(file, Rec, (l) => told.push(l));
    await log.close();
    expect(records).toEqual([]);
    expect(told).toEqual([]);
  });

  test("a torn tail without its newline is dropped, the file cut back to the last whole line, and the repair logged", async () => {
    const whole = lines(a1, b2);
    const tail = '{"op":"put","k":"c","v';
    const file = await fresh(whole + tail);
    expect(await readLog(file, Rec)).toEqual({ records: [a1, b2], torn: { line: 3, bytes: tail.length } });
    // A reader beside the writer leaves the tail alone: it may be an append in flight.
    expect(await readFile(file, "utf8")).toBe(whole + tail);

    const told: string[] = [];
    const { log, records } = await AppendLog.open(file, Rec, (l) => told.push(l));
    expect(records).toEqual([a1, b2]);
    expect(told).toHaveLength(1);
    expect(told[0]).toContain(file);
    expect(told[0]).toContain("line 3");
    expect(await readFile(file, "utf8")).toBe(whole);
    await log.append([delA]);
    await log.close();
    expect(await readFile(file, "utf8")).toBe(whole + lines(delA));
  });

  test("a last line that ends in a newline but is not JSON is torn too", async () => {
    const file = await fresh(lines(a1) + "\u0000\u0000garbage\n");
    const told: string[] = [];
    expect(await repairLog(file, Rec, (l) => told.push(l))).toEqual([a1]);
    expect(told).toHaveLength(1);
    expect(await readFile(file, "utf8")).toBe(lines(a1));
  });

  test("a malformed line before the last is an error naming the file and the line", async () => {
    const file = await fresh(lines(a1) + '{"op":"put","k"\n' + lines(b2));
    const e = await failure(readLog(file, Rec));
    expect(e.file).toBe(file);
    expect(e.line).toBe(2);
    expect(e.message).toContain(`${file}, line 2`);
    // The writer refuses as well, and changes nothing.
    const before = await readFile(file, "utf8");
    expect((await failure(AppendLog.open(file, Rec, () => undefined))).line).toBe(2);
    expect(await readFile(file, "utf8")).toBe(before);
  });

  test("a JSON line of the wrong shape is an error naming the line, wherever it is", async () => {
    const middle = await fresh(lines(a1) + '{"op":"put","k":"b","v":"two"}\n' + lines(b2));
    expect((await failure(readLog(middle, Rec))).message).toMatch(/line 2: not a record of this log/);
    const last = await fresh(lines(a1) + '{"op":"rename"}\n');
    expect((await failure(readLog(last, Rec))).line).toBe(2);
  });

  test("a decoder function works like a schema, its throw becomes the reason", async () => {
    const decode = (json: unknown): number => {
      if (typeof json !== "number") throw new Error("expected a number");
      return json;
    };
    expect((await readLog(await fresh("1\n2\n"), decode)).records).toEqual([1, 2]);
    const e = await failure(readLog(await fresh('1\n"x"\n3\n'), decode));
    expect(e.message).toMatch(/line 2: not a record of this log: expected a number/);
  });

  test("an unreadable log (a directory) is an error naming the file and the cause, never an empty replay", async () => {
    const file = await fresh();
    await mkdir(file);
    const e = await failure(readLog(file, Rec));
    expect(e.message).toContain(file);
    expect(e.message).toContain("EISDIR");
    expect((await failure(AppendLog.open(file, Rec, () => undefined))).message).toContain(file);
  });

  test("repairTail cuts a torn tail without reading what is before it", async () => {
    const file = await fresh(lines(a1) + "not json\n" + lines(b2) + '{"op"');
    const told: string[] = [];
    await repairTail(file, (l) => told.push(l));
    expect(told).toHaveLength(1);
    expect(await readFile(file, "utf8")).toBe(lines(a1) + "not json\n" + lines(b2));
  });
});

describe("appends and compaction", () => {
  test("appends land in call order and are on disk when append returns", async () => {
    const file = await fresh();
    const { log } = await AppendLog.open<Rec>(file, Rec, () => undefined);
    await Promise.all([log.append([a1]), log.append([b2]), log.write([delA]).then(() => log.sync())]);
    await log.close();
    expect((await readLog(file, Rec)).records).toEqual([a1, b2, delA]);
  });

  test("compaction keeps exactly the live records, and appends after it go to the compacted file", async () => {
    const file = await fresh(lines(a1, b2, delA, { op: "put", k: "b", v: 3 }));
    const { log, records } = await AppendLog.open(file, Rec, () => undefined);
    const live = new Map<string, Rec>();
    for (const r of records) {
      if (r.op === "put") live.set(r.k, r);
      else live.delete(r.k);
    }
    await log.compact([...live.values()]);
    await log.append([a1]);
    await log.close();
    expect(await readFile(file, "utf8")).toBe(lines({ op: "put", k: "b", v: 3 }, a1));
    expect((await readdir(join(file, ".."))).sort()).toEqual(["log.jsonl"]);
  });

  test("a crash between the temp write and the rename leaves the old log whole; the next open removes the temp file", async () => {
    const file = await fresh(lines(a1, b2, delA));
    // What an interrupted compaction leaves: its temp file, fsynced but never renamed.
    const temp = join(file, "..", ".log.jsonl.0123abcd.tmp");
    await writeFile(temp, lines(b2));
    const { log, records } = await AppendLog.open(file, Rec, () => undefined);
    expect(records).toEqual([a1, b2, delA]);
    expect((await readdir(join(file, ".."))).sort()).toEqual(["log.jsonl"]);
    await log.compact([b2]);
    await log.close();
    expect((await readLog(file, Rec)).records).toEqual([b2]);
  });
});
