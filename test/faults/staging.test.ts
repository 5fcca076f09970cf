import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  currentBoot,
  emulateStagingCapacity,
  resumeOffset,
  Staging,
  StagingFullError,
  type PartMeta,
  type PartWriter,
} from "../../src/actors/receiver/staging.js";
import type { Offer } from "../../src/protocol/messages.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let root: string;
/** Writers a test left open on purpose (a "killed" receiver never closes them); closed after it. */
const open: PartWriter[] = [];
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "tsync-staging-"));
});
afterEach(async () => {
  emulateStagingCapacity(undefined);
  for (const w of open.splice(0)) await w.close();
  await rm(root, { recursive: true, force: true });
});
const begin = async (staging: Staging, o: Offer): Promise<PartWriter> => {
  const w = await staging.begin("s1", o);
  open.push(w);
  return w;
};

const file = randomBytes(300_000);
const offer: Offer = { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: file.length };
const chunks = (from: number, to: number, size = 64 * 1024) => {
  const out: Array<[Buffer, number]> = [];
  for (let at = from; at < to; at += size) out.push([file.subarray(at, Math.min(to, at + size)), at]);
  return out;
};

describe("resume offset of a partial copy", () => {
  const meta = (durable: number, boot: string): PartMeta => ({ size: 1000, durable, boot });

  test("within one boot every byte on disk counts; after a reboot only the fsynced ones; another size or no meta starts over", () => {
    expect(resumeOffset(meta(0, "b1"), 1000, 700, "b1")).toBe(700);
    expect(resumeOffset(meta(512, "b1"), 1000, 700, "b2")).toBe(512);
    expect(resumeOffset(meta(900, "b1"), 1000, 700, "b2")).toBe(700);
    expect(resumeOffset(meta(0, "b1"), 2000, 700, "b1")).toBe(0);
    expect(resumeOffset(undefined, 1000, 700, "b1")).toBe(0);
    expect(resumeOffset(meta(0, "b1"), 1000, 5000, "b1")).toBe(1000);
  });
});

describe("staging on disk", () => {
  test("a receiver killed mid-file (writer never closed) resumes at the bytes on disk and still ends with the file's digest", async () => {
    const staging = new Staging(root);
    const w1 = await begin(staging, offer);
    for (const [c, at] of chunks(0, 200_000)) await w1.write(c, at);
    // No close(): the process died. Its writes are in the page cache, so the file holds them all.
    const w2 = await begin(new Staging(root), offer);
    expect(w2.received).toBe(200_000);
    for (const [c, at] of chunks(200_000, file.length)) await w2.write(c, at);
    expect(w2.digest()).toBe(sha(file));
    const meta = JSON.parse(await readFile(`${w2.partPath}.meta`, "utf8")) as PartMeta;
    expect(meta.boot).toBe(await currentBoot());
  });

  test("after a reboot (another boot id in the meta) the partial resumes at its fsynced offset, and the bytes past it are cut", async () => {
    const staging = new Staging(root);
    const w1 = await begin(staging, offer);
    for (const [c, at] of chunks(0, 200_000)) await w1.write(c, at);
    await writeFile(
      `${w1.partPath}.meta`,
      JSON.stringify({ size: file.length, durable: 65_536, boot: "an-earlier-boot" } satisfies PartMeta),
    );
    const w2 = await begin(staging, offer);
    expect(w2.received).toBe(65_536);
    expect((await stat(w2.partPath)).size).toBe(65_536);
    for (const [c, at] of chunks(65_536, file.length)) await w2.write(c, at);
    expect(w2.digest()).toBe(sha(file));
  });

  test("a bad prefix on disk is caught by the digest: the caller abandons it and the next offer starts at 0", async () => {
    const staging = new Staging(root);
    const w1 = await begin(staging, offer);
    for (const [c, at] of chunks(0, 100_000)) await w1.write(c, at);
    await w1.close();
    const h = await import("node:fs/promises").then((fs) => fs.open(w1.partPath, "r+"));
    await h.write(Buffer.from([file[5]! ^ 0xff]), 0, 1, 5);
    await h.close();
    const w2 = await begin(staging, offer);
    expect(w2.received).toBe(100_000);
    for (const [c, at] of chunks(100_000, file.length)) await w2.write(c, at);
    expect(w2.digest()).not.toBe(sha(file));
    await w2.abandon();
    expect((await begin(staging, offer)).received).toBe(0);
  });

  test("a sealed part keeps its digest in .ready.meta after the storage took the file, for recovery", async () => {
    const staging = new Staging(root);
    const w = await begin(staging, offer);
    for (const [c, at] of chunks(0, file.length)) await w.write(c, at);
    const ready = await w.seal(sha(file), { devices: [], version: 3 });
    await rm(ready);
    expect(await staging.ready("s1", offer, "tsfile")).toBeUndefined();
    expect(await staging.verified("s1", offer, "tsfile")).toEqual({
      size: file.length,
      sha256: sha(file),
      facts: { devices: [], version: 3 },
    });
  });

  test("staging full: an offer that cannot fit is refused before a byte is written; ENOSPC mid-file drops the partial copy", async () => {
    const staging = new Staging(root);
    emulateStagingCapacity(200_000);
    await expect(staging.begin("s1", offer)).rejects.toBeInstanceOf(StagingFullError);
    emulateStagingCapacity(400_000);
    const w = await begin(staging, offer);
    await writeFile(join(root, "filler"), Buffer.alloc(250_000));
    let error: unknown;
    try {
      for (const [c, at] of chunks(0, file.length)) await w.write(c, at);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StagingFullError);
    expect((error as Error).message).toMatch(/staging disk is full/);
    expect(await stat(w.partPath).catch(() => undefined)).toBeUndefined();
  });
});
