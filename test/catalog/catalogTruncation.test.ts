// A catalog line names at most 1000 devices of its file and counts the rest: a sender's file with a huge device
// list once left a 176 MB line in catalog.jsonl.
import { appendFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Catalog, deviceCount, maxCatalogDevicesPerLine, type CatalogEntry } from "../../src/actors/receiver/catalog.js";
import { catalogPath } from "../../src/actors/receiver/receiver.js";
import { runTsync } from "../harness/cli.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await tempRoot("tsync-catalog-cut-");
});
afterAll(async () => {
  await removeAll(root);
});

const id = (i: number) => `root.sg1.d${String(i).padStart(5, "0")}`;
const entry = (name: string, devices: number): CatalogEntry => ({
  sender: "edge-a",
  ref: { sg: "root.sg1", vg: "0", tp: "0", name },
  devices: Array.from({ length: devices }, (_, i) => ({ id: id(i), startTime: "1700000000000", endTime: "1700000001000" })),
  version: 3,
  loadedAt: "2024-01-01T00:00:00.000Z",
});

describe("catalog lines", () => {
  test("a file with more devices than a line names is recorded with its first 1000 devices and the total", async () => {
    expect(maxCatalogDevicesPerLine).toBe(1000);
    const path = join(root, `c${n++}`, "catalog.jsonl");
    await new Catalog(path).loaded(entry("1-1-0-0.tsfile", 150_000));
    const text = await readFile(path, "utf8");
    expect(text.split("\n").filter(Boolean)).toHaveLength(1);
    // 150 000 devices would be some 9 MB on one line; 1000 of them are about 60 KB.
    expect(text.length).toBeLessThan(100_000);
    const [e] = await new Catalog(path).entries();
    expect(e?.devices.map((d) => d.id)).toEqual(Array.from({ length: 1000 }, (_, i) => id(i)));
    expect(e).toMatchObject({ devicesTotal: 150_000, devicesTruncated: true });
    expect(deviceCount(e!)).toBe(150_000);
  });

  test("a file within the bound is recorded whole, without the count fields", async () => {
    const path = join(root, `c${n++}`, "catalog.jsonl");
    await new Catalog(path).loaded(entry("1-1-0-0.tsfile", 1000));
    const [e] = await new Catalog(path).entries();
    expect(e?.devices).toHaveLength(1000);
    expect(e).not.toHaveProperty("devicesTotal");
    expect(e).not.toHaveProperty("devicesTruncated");
    expect(deviceCount(e!)).toBe(1000);
  });

  test("lines written before the bound existed read as they always did", async () => {
    const path = join(root, `c${n++}`, "catalog.jsonl");
    const old = entry("0-0-0-0.tsfile", 1500);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, JSON.stringify({ op: "loaded", ...old }) + "\n");
    await new Catalog(path).loaded(entry("1-1-0-0.tsfile", 1500));
    const entries = await new Catalog(path).entries();
    expect(entries.find((e) => e.ref.name === "0-0-0-0.tsfile")).toEqual(old);
    expect(deviceCount(entries.find((e) => e.ref.name === "0-0-0-0.tsfile")!)).toBe(1500);
    expect(entries.find((e) => e.ref.name === "1-1-0-0.tsfile")?.devices).toHaveLength(1000);
  });
});

test("tsync catalog says when a file's device list was cut, and that a device it does not name may be in it", async () => {
  const dataDir = join(root, "centre");
  const catalog = new Catalog(catalogPath(dataDir));
  await catalog.loaded(entry("1-1-0-0.tsfile", 1500));
  await catalog.loaded(entry("2-2-0-0.tsfile", 2));
  // An older, whole line of 1500 devices is shown whole.
  await appendFile(catalogPath(dataDir), JSON.stringify({ op: "loaded", ...entry("0-0-0-0.tsfile", 1500) }) + "\n");
  const conf = join(root, "catalog.properties");
  await writeFile(conf, `receiver_data_directory=${dataDir}\n`);

  const text = await runTsync(["catalog", "--config", conf]);
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toContain("root.sg1/0/0/1-1-0-0.tsfile from edge-a");
  expect(text.stdout).toContain("  … and 500 more devices (the catalog names the first 1000 of 1500)\n");
  expect(text.stdout.match(/more devices/g)).toHaveLength(1);
  expect(text.stdout).toContain(`  ${id(1499)}: `); // from the old, whole line

  const unnamed = await runTsync(["catalog", "--config", conf, "--device", id(1200)]);
  expect(unnamed.code, unnamed.stderr).toBe(0);
  expect(unnamed.stdout).toContain("root.sg1/0/0/0-0-0-0.tsfile from edge-a");
  expect(unnamed.stdout).toContain(
    "root.sg1/0/0/1-1-0-0.tsfile from edge-a may hold it among devices the catalog does not name (it names 1000 of its 1500)\n",
  );

  const json = JSON.parse((await runTsync(["catalog", "--config", conf, "--json"])).stdout) as CatalogEntry[];
  expect(json.find((e) => e.ref.name === "1-1-0-0.tsfile")).toMatchObject({ devicesTotal: 1500, devicesTruncated: true });
});
