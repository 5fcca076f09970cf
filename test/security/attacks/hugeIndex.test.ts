// Security finding: a valid TsFile whose index lists millions of devices made the receiver's verify step take
// gigabytes (1.5 million devices: 1.7 GB) and wrote its whole device list into one catalog line. The check now
// runs within limits that it holds against the index before it reads what they count.
import { spawn } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Catalog } from "../../../src/actors/receiver/catalog.js";
import { catalogPath, Receiver } from "../../../src/actors/receiver/receiver.js";
import {
  defaultTsFileCheckLimits,
  tsfileCheckLimits,
  validateTsFile,
  validateTsFileWithin,
} from "../../../src/actors/receiver/validateTsFile.js";
import { Code, codeName } from "../../../src/protocol/status.js";
import { receiverConfig } from "../../harness/configs.js";
import { startTestNatsServer } from "../../harness/natsServer.js";
import { listFiles, openSender, removeAll, tempRoot } from "../../harness/syncPair.js";
import { smallEdge } from "../../plugins/e2e.js";
import { writeHugeIndexTsFile } from "./hugeIndexFile.js";

const MiB = 2 ** 20;

let root: string;
let checkScript: string;
beforeAll(async () => {
  root = await tempRoot("tsync-huge-index-");
  // Bundled to plain JavaScript, so that the child's RSS is the check's and node's, not a TypeScript loader's.
  checkScript = join(root, "check.mjs");
  await build({
    entryPoints: [fileURLToPath(new URL("./checkTsFileChild.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: checkScript,
    logLevel: "warning",
  });
});
afterAll(async () => {
  await removeAll(root);
});

interface ChildCheck {
  readonly ok: boolean;
  readonly reason?: string;
  readonly devices?: number;
  readonly maxRssBytes: number;
}

/** The receiver's real verify step (default limits) on `file`, in a fresh node process. */
const checkInChild = (file: string): Promise<ChildCheck> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [checkScript, file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !line) reject(new Error(`check exited with ${code ?? signal}:\n${out}\n${err}`));
      else resolve(JSON.parse(line) as ChildCheck);
    });
  });

const measured: string[] = [];

describe("the verify step runs in bounded memory", () => {
  afterAll(() => {
    // The figures for the record: peak RSS of a node process running only the check.
    if (measured.length > 0) console.log(`verify step peak RSS:\n  ${measured.join("\n  ")}`);
  });

  const cases = [
    { devices: 10_000, shape: "flat", ok: true },
    { devices: 100_000, shape: "flat", ok: true }, // the default limit: the most a sender can make the check keep
    { devices: 200_000, shape: "flat", ok: false },
    { devices: 200_000, shape: "tree", ok: false }, // no single node is large: the running count refuses it
    { devices: 1_500_000, shape: "flat", ok: false }, // the finding's file
  ] as const;

  test.each(cases)("$devices devices under a $shape index: ok $ok", async ({ devices, shape, ok }) => {
    const file = join(root, `${shape}-${devices}.tsfile`);
    const written = await writeHugeIndexTsFile(file, { devices, shape });
    try {
      const check = await checkInChild(file);
      measured.push(
        `${devices} devices (${shape}, ${(written.size / MiB).toFixed(0)} MiB file): ${(check.maxRssBytes / MiB).toFixed(0)} MiB, ${check.ok ? "accepted" : check.reason}`,
      );
      expect(check.ok).toBe(ok);
      if (ok) {
        expect(check.devices).toBe(devices);
      } else if (shape === "flat") {
        expect(check.reason).toBe(`index lists at least ${devices} devices; the receiver accepts at most 100000 (tsfile_max_devices)`);
        // Refused from the root's declared count: no more than a process that checked a small file.
        expect(check.maxRssBytes).toBeLessThan(100 * MiB);
      } else {
        expect(check.reason).toMatch(/^index lists at least 1000\d\d devices; the receiver accepts at most 100000 \(tsfile_max_devices\)$/);
      }
      // Before the limits the 200 000-device file took 290 MiB and the 1.5 million one 1.7 GiB.
      expect(check.maxRssBytes).toBeLessThan(250 * MiB);
    } finally {
      await rm(file, { force: true });
    }
  });

  test("every limit is a parameter of validateTsFile and names its receiver setting when a file goes over it", async () => {
    const file = join(root, "small.tsfile");
    await writeHugeIndexTsFile(file, { devices: 300 });
    try {
      expect(await validateTsFile(file)).toMatchObject({ ok: true });
      expect(await validateTsFile(file, { maxDevices: 299 })).toEqual({
        ok: false,
        reason: "index lists at least 300 devices; the receiver accepts at most 299 (tsfile_max_devices)",
      });
      expect(await validateTsFile(file, { maxSeries: 10 })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/ time series; the receiver accepts at most 10 \(tsfile_max_series\)$/),
      });
      expect(await validateTsFile(file, { maxDeviceIdBytes: 100 })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(
          /^device ids in the index take at least \d+ bytes; the receiver accepts at most 100 \(tsfile_max_device_id_bytes\)$/,
        ),
      });
      expect(await validateTsFile(file, { maxIndexBytes: 1000 })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/^index section is \d+ bytes; the receiver accepts at most 1000 \(tsfile_max_index_bytes\)$/),
      });
    } finally {
      await rm(file, { force: true });
    }
  });

  test("the receiver's configuration keys default to validateTsFile's defaults and reach it", () => {
    const { maxRecordBytes: _internal, ...configurable } = defaultTsFileCheckLimits;
    expect(tsfileCheckLimits(receiverConfig({}))).toEqual(configurable);
    expect(
      tsfileCheckLimits(
        receiverConfig({ tsfile_max_devices: "7", tsfile_max_index_bytes: "8", tsfile_max_series: "9", tsfile_max_device_id_bytes: "10" }),
      ),
    ).toEqual({
      maxDevices: 7,
      maxIndexBytes: 8,
      maxSeries: 9,
      maxDeviceIdBytes: 10,
    });
  });
});

/** Every file under `dir`, tsync's own state included (staging, journal). */
const allFiles = async (dir: string): Promise<string[]> =>
  (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));

test("over a real receiver: the huge-index file is refused as badTsFile naming the limit, quarantined and not loaded; the sender's other files arrive", async () => {
  const server = await startTestNatsServer();
  const group = `hugeidx${process.pid}`;
  const edge = join(root, "edge");
  const centre = join(root, "centre");
  try {
    const files = await smallEdge(edge);
    const first = files[0];
    if (!first) throw new Error("no sample files");
    const hugeName = "1700000000000-99-0-0.tsfile";
    // A modest file against a low limit: the same refusal as 1.5 million devices against the default.
    await writeHugeIndexTsFile(join(dirname(first.path), hugeName), { devices: 300, prefix: first.sg }, true);
    const config = receiverConfig({
      is_sync_enable: "true",
      receiver_data_directory: centre,
      nats_url: server.url,
      nats_monitor_url: server.monitorUrl,
      receiver_group: group,
      tsfile_max_devices: "200",
    });
    const receiver = await Receiver.start({ config, validateTsFile: validateTsFileWithin(config), log: () => undefined });
    try {
      const sender = await openSender(server, edge, { receiver_group: group, max_number_of_sync_file_retry: "3" });
      try {
        const summary = await sender.runOnce();
        expect(summary.roundError).toBeUndefined();
        const huge = `${first.sg}/${first.vg}/${first.tp}/${hugeName}`;
        expect(summary.failed).toEqual([
          {
            file: huge,
            reason: `${codeName(Code.badTsFile)}: ${hugeName} is not a sound TsFile: index lists at least 300 devices; the receiver accepts at most 200 (tsfile_max_devices)`,
            // badTsFile is final: quarantined for the round without the three retries.
            attempts: 1,
          },
        ]);
        expect(summary.sent.map((s) => s.file).sort()).toEqual(files.map((f) => `${f.sg}/${f.vg}/${f.tp}/${f.name}`).sort());
      } finally {
        await sender.close();
      }
    } finally {
      await receiver.stop();
    }
    for (const f of files) expect(await readFile(join(centre, "sequence", f.sg, f.vg, f.tp, f.name))).toEqual(await readFile(f.path));
    // Nothing of it reached the storage; its bytes left staging too (its verified .resource stays staged, as
    // for any file refused at verify, until the sender's next offer).
    expect((await listFiles(centre)).filter((p) => p.includes(hugeName))).toEqual([]);
    expect((await allFiles(centre)).filter((p) => p.includes(hugeName) && !p.includes(`${hugeName}.resource`))).toEqual([]);
    expect((await new Catalog(catalogPath(centre)).entries()).map((e) => e.ref.name).sort()).toEqual(files.map((f) => f.name).sort());
    expect(await readFile(catalogPath(centre), "utf8")).not.toContain(hugeName);
  } finally {
    await server.cleanup();
  }
});
