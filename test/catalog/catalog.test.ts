import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fc, test as prop } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Catalog, queryCatalog, type CatalogEntry } from "../../src/actors/receiver/catalog.js";
import { catalogPath } from "../../src/actors/receiver/receiver.js";
import { parseTsFileResource } from "../../src/tsfile/resource.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { runTsync } from "../harness/cli.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import { deleteOnEdge, openPair } from "../plugins/e2e.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await tempRoot("tsync-catalog-");
});
afterAll(async () => {
  await removeAll(root);
});

const entry = (sender: string, sg: string, name: string, devices: ReadonlyArray<string>): CatalogEntry => ({
  sender,
  ref: { sg, vg: "0", tp: "0", name },
  devices: devices.map((id) => ({ id, startTime: "1000", endTime: "2000" })),
  version: 3,
  loadedAt: "2024-01-01T00:00:00.000Z",
});

describe("catalog file", () => {
  test("the latest load of a file wins, a deletion removes it, and the same file from two senders is two entries", async () => {
    const c = new Catalog(join(root, `c${n++}`, "catalog.jsonl"));
    await c.loaded(entry("a", "root.sg1", "1-1-0-0.tsfile", ["root.sg1.d1"]));
    await c.loaded(entry("a", "root.sg1", "1-1-0-0.tsfile", ["root.sg1.d2"]));
    await c.loaded(entry("b", "root.sg1", "1-1-0-0.tsfile", ["root.sg1.d3"]));
    await c.loaded(entry("a", "root.sg1", "2-2-0-0.tsfile", ["root.sg1.d1"]));
    await c.deleted("a", { sg: "root.sg1", vg: "0", tp: "0", name: "2-2-0-0.tsfile" });
    const got = await c.entries();
    expect(got.map((e) => [e.sender, e.ref.name, e.devices[0]?.id]).sort()).toEqual([
      ["a", "1-1-0-0.tsfile", "root.sg1.d2"],
      ["b", "1-1-0-0.tsfile", "root.sg1.d3"],
    ]);
  });

  test("a torn last line (a crash mid-append) is skipped, the lines before it stay", async () => {
    const path = join(root, `c${n++}`, "catalog.jsonl");
    const c = new Catalog(path);
    await c.loaded(entry("a", "root.sg1", "1-1-0-0.tsfile", ["root.sg1.d1"]));
    await appendFile(path, '{"op":"loaded","sender":"a","ref":{"sg":"ro');
    expect((await c.entries()).map((e) => e.ref.name)).toEqual(["1-1-0-0.tsfile"]);
  });

  test("no catalog yet means nothing has arrived", async () => {
    expect(await new Catalog(join(root, "none", "catalog.jsonl")).entries()).toEqual([]);
  });
});

describe("catalog queries", () => {
  const all = [
    entry("a", "root.sg1", "1-1-0-0.tsfile", ["root.sg1.d1", "root.sg1.d1.sub"]),
    entry("a", "root.sg1", "2-2-0-0.tsfile", ["root.sg1.d10"]),
    entry("b", "root.sg2", "3-3-0-0.tsfile", ["root.sg2.d1"]),
  ];

  test("--group keeps one storage group, --device a device and what lies below it (not a longer name)", () => {
    expect(queryCatalog(all, { group: "root.sg2" }).map((e) => e.ref.name)).toEqual(["3-3-0-0.tsfile"]);
    expect(queryCatalog(all, { device: "root.sg1.d1" }).map((e) => e.ref.name)).toEqual(["1-1-0-0.tsfile"]);
    expect(queryCatalog(all, { device: "root.sg1" }).map((e) => e.ref.name)).toEqual(["1-1-0-0.tsfile", "2-2-0-0.tsfile"]);
    expect(queryCatalog(all, { group: "root.sg2", device: "root.sg1.d1" })).toEqual([]);
    expect(queryCatalog(all, {})).toEqual(all);
  });

  const segment = fc.constantFrom("a", "b", "ab", "b1");
  const device = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => `root.${s.join(".")}`);
  prop.prop([fc.array(fc.array(device, { minLength: 1, maxLength: 3 }), { maxLength: 6 }), device])(
    "a device query returns exactly the files holding that device or one below it",
    (files, wanted) => {
      const entries = files.map((devices, i) => entry("s", "root.x", `${i + 1}-1-0-0.tsfile`, devices));
      const expected = entries.filter((e) => e.devices.some((d) => d.id === wanted || d.id.startsWith(`${wanted}.`)));
      expect(queryCatalog(entries, { device: wanted })).toEqual(expected);
      for (const e of queryCatalog(entries, { device: wanted }))
        expect(e.devices.some((d) => d.id.split(".").slice(0, wanted.split(".").length).join(".") === wanted)).toBe(true);
    },
  );
});

describe("catalog of a real receiver", () => {
  let server: TestNatsServer;
  beforeAll(async () => {
    server = await startTestNatsServer();
  });
  afterAll(async () => {
    await server.cleanup();
  });

  test("records sender, group, devices and time ranges of each loaded file from the verify step; tsync catalog answers from it", async () => {
    const pair = await openPair(server, root, {});
    try {
      expect(roundSucceeded(await pair.round())).toBe(true);
      const entries = await new Catalog(catalogPath(pair.centre)).entries();
      expect(entries.map((e) => e.ref.name).sort()).toEqual(pair.files.map((f) => f.name).sort());
      for (const f of pair.files) {
        const e = entries.find((x) => x.ref.name === f.name)!;
        expect(e.sender).toBe(pair.sender.senderId);
        expect(e.ref).toEqual({ sg: f.sg, vg: f.vg, tp: f.tp, name: f.name });
        // The .resource was written from the data by an independent path: the ranges must agree.
        const resource = parseTsFileResource(await readFile(`${f.path}.resource`));
        expect([...e.devices].sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(
          resource.devices
            .map((d) => ({ id: d.id, startTime: String(d.startTime), endTime: String(d.endTime) }))
            .sort((a, b) => (a.id < b.id ? -1 : 1)),
        );
      }
      const [gone, kept] = pair.files;
      await deleteOnEdge(gone!);
      expect((await pair.round()).deleted).toHaveLength(1);
      expect((await new Catalog(catalogPath(pair.centre)).entries()).map((e) => e.ref.name)).toEqual([kept!.name]);

      const conf = join(root, "catalog.properties");
      await writeFile(conf, `receiver_data_directory=${pair.centre}\n`);
      const device = (await new Catalog(catalogPath(pair.centre)).entries())[0]!.devices[0]!;
      const json = await runTsync(["catalog", "--config", conf, "--device", device.id, "--json"]);
      expect(json.code, json.stderr).toBe(0);
      const listed = JSON.parse(json.stdout) as CatalogEntry[];
      expect(listed.map((e) => e.ref.name)).toEqual([kept!.name]);
      const text = await runTsync(["catalog", "--config", conf, "--group", kept!.sg]);
      expect(text.stdout).toContain(`${kept!.sg}/${kept!.vg}/${kept!.tp}/${kept!.name} from ${pair.sender.senderId}`);
      expect(text.stdout).toContain(
        `${device.id}: ${new Date(Number(device.startTime)).toISOString()} .. ${new Date(Number(device.endTime)).toISOString()}`,
      );
      const none = await runTsync(["catalog", "--config", conf, "--group", "root.nothing"]);
      expect(none.stdout.trim()).toBe("nothing matches");
    } finally {
      await pair.close();
    }
  });
});
