// Staging hygiene without NATS: the per-sender quota (by announced size, rebuilt from the disk at
// start-up) and the sweep of abandoned parts (by mtime, never under an open writer).
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Result } from "effect";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { parseReceiverConfig } from "../../../src/config/receiver.js";
import { Staging, type PartWriter } from "../../../src/actors/receiver/staging.js";
import { minPartCharge, StagingQuotaError, sweepIntervalMs } from "../../../src/actors/receiver/stagingHygiene.js";
import type { Offer } from "../../../src/protocol/messages.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const offer = (name: string, size: number, sg = "root.sg"): Offer => ({ sg, vg: "0", tp: "0", name, kind: "tsfile", size });

let root: string;
const open: PartWriter[] = [];
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "tsync-hygiene-"));
});
afterEach(async () => {
  for (const w of open.splice(0)) await w.close();
  await rm(root, { recursive: true, force: true });
});

const begin = async (s: Staging, sender: string, o: Offer): Promise<PartWriter> => {
  const w = await s.begin(sender, o);
  open.push(w);
  return w;
};

/** Sets a file's mtime `ageMs` into the past, as if nobody had touched it since. */
const age = (path: string, ageMs: number) => utimes(path, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe("per-sender quota", () => {
  test("an offer past the quota is refused naming the key, the quota and the holdings; the earlier part stays and resumes", async () => {
    const staging = new Staging(root, undefined, { quotaBytesPerSender: 100_000 });
    const a = await begin(staging, "s1", offer("1-1-0-0.tsfile", 60_000));
    await a.write(randomBytes(10_000), 0);
    await a.close();
    const refused = await staging.begin("s1", offer("2-2-0-0.tsfile", 50_000)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StagingQuotaError);
    expect((refused as Error).message).toMatch(
      /^staging_quota_bytes_per_sender: root\.sg\/0\/0\/2-2-0-0\.tsfile \(tsfile\) of 50000 bytes .* quota of 100000 bytes; it already holds 60000 bytes in 1 part /,
    );
    // Counted by announced size, not by the 10 000 bytes written: 60 000 + 40 000 fits exactly.
    await begin(staging, "s1", offer("3-3-0-0.tsfile", 40_000));
    // A resume never needs more room, even with the sender at its quota.
    expect((await begin(staging, "s1", offer("1-1-0-0.tsfile", 60_000))).received).toBe(10_000);
    // Another sender has its own quota.
    await begin(staging, "s2", offer("2-2-0-0.tsfile", 90_000));
    expect(await staging.hygiene.holding("s1")).toEqual({ bytes: 100_000, parts: 2 });
  });

  test("the tally is rebuilt from the disk at start-up, by announced size; loads, refusals and discards free it", async () => {
    const first = new Staging(root, undefined, { quotaBytesPerSender: 100_000 });
    const body = randomBytes(30_000);
    const done = await begin(first, "s1", offer("1-1-0-0.tsfile", body.length));
    await done.write(body, 0);
    await done.seal(sha(body), undefined);
    const partial = await begin(first, "s1", offer("2-2-0-0.tsfile", 50_000));
    await partial.write(randomBytes(1_000), 0);
    // No close: a killed receiver. The next one counts what the disk holds.
    const again = new Staging(root, undefined, { quotaBytesPerSender: 100_000 });
    expect(await again.hygiene.holding("s1")).toEqual({ bytes: 80_000, parts: 2 });
    await expect(again.begin("s1", offer("3-3-0-0.tsfile", 30_000))).rejects.toBeInstanceOf(StagingQuotaError);
    // The verified part is loaded (the storage took it, the core discards it): its bytes are free.
    await again.discard("s1", offer("1-1-0-0.tsfile", body.length), "tsfile");
    const w = await begin(again, "s1", offer("3-3-0-0.tsfile", 30_000));
    // A part dropped (digest mismatch) frees its share too.
    await w.abandon();
    expect(await again.hygiene.holding("s1")).toEqual({ bytes: 50_000, parts: 1 });
  });

  test("empty parts are not free: each counts at least a block, so the quota also bounds how many parts a sender keeps", async () => {
    const staging = new Staging(root, undefined, { quotaBytesPerSender: 3 * minPartCharge });
    for (let i = 1; i <= 3; i++) await begin(staging, "s1", offer(`${i}-${i}-0-0.tsfile`, 0));
    await expect(staging.begin("s1", offer("4-4-0-0.tsfile", 0))).rejects.toBeInstanceOf(StagingQuotaError);
  });
});

describe("sweep of abandoned parts", () => {
  const grace = 60_000;

  test("parts (partial and verified) untouched for the grace go with their meta and emptied folders; fresh parts, open writers and recovery records stay", async () => {
    const lines: string[] = [];
    const staging = new Staging(root, (l) => lines.push(l), { quotaBytesPerSender: 1_000_000, graceMs: grace });
    const old = await begin(staging, "gone", offer("1-1-0-0.tsfile", 50_000, "root.old"));
    await old.write(randomBytes(20_000), 0);
    await old.close();
    const body = randomBytes(5_000);
    const verified = await begin(staging, "gone", offer("2-2-0-0.tsfile", body.length, "root.old"));
    await verified.write(body, 0);
    const ready = await verified.seal(sha(body), undefined);
    const fresh = await begin(staging, "gone", offer("3-3-0-0.tsfile", 50_000));
    await fresh.write(randomBytes(1_000), 0);
    await fresh.close();
    for (const p of [old.partPath, `${old.partPath}.meta`, ready, `${ready}.meta`]) await age(p, 2 * grace);
    // Storage took this one's file, the journal did not record it: its .ready.meta is how a restart finds out.
    const record = join(root, "gone", "root.rec", "0", "0", "4-4-0-0.tsfile.ready.meta");
    await mkdir(join(root, "gone", "root.rec", "0", "0"), { recursive: true });
    await writeFile(record, JSON.stringify({ size: 1, durable: 1, sha256: "a".repeat(64) }));
    await age(record, 2 * grace);

    // A restarted receiver: nothing was touched in this process yet, so only the mtimes speak.
    const later = new Staging(root, (l) => lines.push(l), { quotaBytesPerSender: 1_000_000, graceMs: grace });
    const swept = await later.hygiene.sweep();
    expect(swept.map((s) => `${s.sender}:${s.file}`).sort()).toEqual([
      "gone:root.old/0/0/1-1-0-0.tsfile.part",
      "gone:root.old/0/0/2-2-0-0.tsfile.ready",
    ]);
    expect(swept.find((s) => s.file.endsWith(".part"))?.bytes).toBeGreaterThan(20_000);
    expect(
      lines.some((l) =>
        /swept an abandoned part of sender gone: root\.old\/0\/0\/1-1-0-0\.tsfile\.part \(\d+ bytes, untouched for 120 s/.test(l),
      ),
    ).toBe(true);
    expect(await exists(join(root, "gone", "root.old"))).toBe(false);
    expect(await exists(fresh.partPath)).toBe(true);
    expect(await exists(record)).toBe(true);
    expect(await later.hygiene.holding("gone")).toEqual({ bytes: 50_000, parts: 1 });
  });

  test("within one process, a sender with an open writer or recent use keeps every part, whatever the mtimes", async () => {
    const staging = new Staging(root, undefined, { graceMs: grace });
    const body = randomBytes(5_000);
    const v = await begin(staging, "s1", offer("1-1-0-0.tsfile", body.length));
    await v.write(body, 0);
    const ready = await v.seal(sha(body), undefined);
    await age(ready, 2 * grace);
    await age(`${ready}.meta`, 2 * grace);
    // A big file still arriving while the verified .resource waits for the load.
    const w = await begin(staging, "s1", offer("2-2-0-0.tsfile", 50_000));
    await w.write(randomBytes(1_000), 0);
    await age(w.partPath, 2 * grace);
    expect(await staging.hygiene.sweep(Date.now() + 2 * grace)).toEqual([]);
    await w.close();
    // Closed, and just used: still within the grace of its last use.
    expect(await staging.hygiene.sweep()).toEqual([]);
    // Long after its last use the sender's parts are abandoned.
    await age(w.partPath, 2 * grace);
    await age(`${w.partPath}.meta`, 2 * grace);
    expect((await staging.hygiene.sweep(Date.now() + 2 * grace)).map((s) => s.file).sort()).toEqual([
      "root.sg/0/0/1-1-0-0.tsfile.ready",
      "root.sg/0/0/2-2-0-0.tsfile.part",
    ]);
    expect(await readdir(root)).toEqual([]);
  });

  test("the sweeper sweeps at start, then every quarter of the grace (at least every 10 min), and stops", async () => {
    expect(sweepIntervalMs(86_400_000)).toBe(600_000);
    expect(sweepIntervalMs(2_000)).toBe(500);
    const seed = new Staging(root);
    const w = await begin(seed, "s1", offer("1-1-0-0.tsfile", 1_000));
    await w.close();
    await age(w.partPath, 5_000);
    await age(`${w.partPath}.meta`, 5_000);
    const staging = new Staging(root, undefined, { graceMs: 1_000 });
    const stop = await staging.startSweeper();
    expect(await exists(w.partPath)).toBe(false);
    const w2 = await begin(new Staging(root), "s2", offer("1-1-0-0.tsfile", 1_000));
    await w2.close();
    await age(w2.partPath, 5_000);
    await age(`${w2.partPath}.meta`, 5_000);
    const deadline = Date.now() + 5_000;
    while ((await exists(w2.partPath)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await exists(w2.partPath)).toBe(false);
    await stop();
  });
});

describe("keys", () => {
  test("defaults leave room for the largest file and outlast an idle session; a quota below max_file_size_bytes stops start-up", () => {
    const c = parseReceiverConfig({}, {}, "receiver.properties", "/srv");
    expect(Result.isSuccess(c)).toBe(true);
    if (Result.isSuccess(c)) {
      expect(c.success.staging_quota_bytes_per_sender).toBeGreaterThanOrEqual(2 * c.success.max_file_size_bytes);
      expect(c.success.staging_grace_in_second).toBeGreaterThan(c.success.session_idle_timeout_in_second);
    }
    const low = parseReceiverConfig(
      { staging_quota_bytes_per_sender: "1000", max_file_size_bytes: "2000" },
      {},
      "receiver.properties",
      "/srv",
    );
    expect(Result.isFailure(low) && low.failure.message).toBe(
      "config error: staging_quota_bytes_per_sender (1000) is below max_file_size_bytes (2000): a sender could never send the largest files the receiver accepts",
    );
  });
});
