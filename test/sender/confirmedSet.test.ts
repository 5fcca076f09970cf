// The sender's confirmed files in memory: one record per partition, a packed string per file, exactly what was confirmed.
import { describe, expect, test } from "vitest";
import { ConfirmedSet, type ConfirmedUnit } from "../../src/actors/sender/confirmedSet.js";
import { fileKey } from "../../src/protocol/parts.js";

const digest = (i: number) => i.toString(16).padStart(64, "0");

const unit = (tp: number, i: number, extra: Partial<ConfirmedUnit> = {}): ConfirmedUnit => ({
  ref: { sg: "root.sg1", vg: "0", tp: String(tp), name: `${1_700_000_000_000 + i}-${i}-0-0.tsfile` },
  parts: [
    { kind: "resource", size: 321 + i, sha256: digest(2 * i), mtimeMs: 1_733_392_000_000.123 + i },
    { kind: "tsfile", size: 4096 * i, sha256: digest(2 * i + 1), mtimeMs: 1_733_392_000_000.456 + i },
  ],
  ...extra,
});

describe("confirmed set", () => {
  test("gives back every part exactly as confirmed: kinds in order, sizes past 4 GiB, fractional mtimes, side files", () => {
    const set = new ConfirmedSet();
    const big: ConfirmedUnit = {
      ref: { sg: "root.sg1", vg: "3", tp: "2800", name: "1-1-0-0.tsfile" },
      parts: [
        { kind: "resource", size: 0, sha256: digest(1), mtimeMs: 0.5 },
        { kind: "tsfile", size: 2 ** 40 + 7, sha256: "ab".repeat(32), mtimeMs: 1_733_392_123_456.789 },
        { kind: "mods", size: 17, sha256: digest(3), mtimeMs: 1_733_392_123_457.001 },
        { kind: "mods2", size: 18, sha256: digest(4), mtimeMs: 1_733_392_123_457.002 },
      ],
    };
    set.add(big);
    set.add(unit(1, 1));
    expect(set.get(big.ref)).toEqual(big);
    expect(set.get(unit(1, 1).ref)).toEqual(unit(1, 1));
    expect(set.get({ ...big.ref, name: "2-2-0-0.tsfile" })).toBeUndefined();
    expect(set.size).toBe(2);
    expect([...set.units()].map((u) => u.ref.name).sort()).toEqual(["1-1-0-0.tsfile", "1700000000001-1-0-0.tsfile"]);
  });

  test("is compact: the partition's names once per partition, each file one packed string of 1 + 49 characters per part", () => {
    const set = new ConfirmedSet();
    for (let i = 0; i < 1000; i++) set.add(unit(i < 600 ? 0 : 1, i));
    const partitions = [...set.partitions()];
    expect(partitions.map((p) => p.ref)).toEqual([
      { sg: "root.sg1", vg: "0", tp: "0" },
      { sg: "root.sg1", vg: "0", tp: "1" },
    ]);
    expect(partitions.map((p) => p.footprint())).toEqual([
      { files: 600, packed: 600, packedChars: 600 * 99, loose: 0 },
      { files: 400, packed: 400, packedChars: 400 * 99, loose: 0 },
    ]);
  });

  test("a digest the packed form cannot hold (not lowercase hex) keeps the file as it was confirmed", () => {
    const set = new ConfirmedSet();
    const odd = unit(0, 1, {
      parts: [
        { kind: "resource", size: 1, sha256: "", mtimeMs: 1 },
        { kind: "tsfile", size: 2, sha256: "AB".repeat(32), mtimeMs: 2 },
      ],
    });
    set.add(odd);
    set.add(unit(0, 2));
    expect(set.get(odd.ref)).toEqual(odd);
    expect(set.partition("root.sg1/0/0")?.footprint()).toEqual({ files: 2, packed: 1, packedChars: 99, loose: 1 });
  });

  test("a partition's version moves with every change to it, never repeats, and is 0 once it is empty", () => {
    const set = new ConfirmedSet();
    expect(set.versionOf("root.sg1/0/0")).toBe(0);
    set.add(unit(0, 1));
    const v1 = set.versionOf("root.sg1/0/0");
    set.add(unit(1, 2));
    expect(set.versionOf("root.sg1/0/0")).toBe(v1);
    set.add(unit(0, 3));
    const v2 = set.versionOf("root.sg1/0/0");
    expect(v2).not.toBe(v1);
    set.deleteKey(fileKey(unit(0, 3).ref));
    const v3 = set.versionOf("root.sg1/0/0");
    expect([v1, v2]).not.toContain(v3);
    set.deleteKey(fileKey(unit(0, 1).ref));
    expect(set.versionOf("root.sg1/0/0")).toBe(0);
    expect(set.partition("root.sg1/0/0")).toBeUndefined();
    set.add(unit(0, 1));
    expect([0, v1, v2, v3]).not.toContain(set.versionOf("root.sg1/0/0"));
    expect(set.size).toBe(2);
    set.deleteKey(fileKey(unit(0, 9).ref));
    expect(set.size).toBe(2);
  });
});
