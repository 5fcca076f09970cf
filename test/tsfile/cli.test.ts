import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseSize, runTsfileCommand, type CliIo } from "../../src/cli/tsfileCommand.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsync-tsfile-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await runTsfileCommand(args, io);
  return { code, out, err };
}

interface InspectJson {
  file: string;
  version: number;
  size: number;
  metaOffset: number;
  devices: {
    id: string;
    aligned: boolean;
    startTime: string | null;
    endTime: string | null;
    measurements: { name: string; dataType: string }[];
  }[];
  tables?: unknown[];
}

describe("tsync tsfile generate + inspect", () => {
  test("generate 3 MiB writes a file within 2% of the size, and inspect calls it valid", async () => {
    const out = join(dir, "three.tsfile");
    const generated = await run("generate", out, "--size", "3MiB");
    expect(generated).toMatchObject({ code: 0, err: "" });
    expect(generated.out).toMatch(/^wrote .*three\.tsfile: \d+ bytes \(target 3145728\), TsFile v3, 10 devices, 60 series, \d+ chunks\n$/);
    const { size } = await stat(out);
    expect(Math.abs(size - 3 * 2 ** 20) / (3 * 2 ** 20)).toBeLessThan(0.02);

    const inspected = await run("inspect", out);
    expect(inspected.code).toBe(0);
    expect(inspected.err).toBe("");
    expect(inspected.out).toContain(`TsFile v3, ${size} bytes`);
    expect(inspected.out).toContain("10 device(s)");
    expect(inspected.out).toMatch(/^ {2}root\.sg0\.d0000 {2}time \d+\.\.\d+$/m);
    expect(inspected.out).toMatch(/^ {4}s_long {2}INT64$/m);
  });

  test("inspect --json prints parseable JSON with bigints as decimal strings", async () => {
    const out = join(dir, "json.tsfile");
    expect((await run("generate", out, "--size", "200KiB", "--devices", "4", "--seed", "9")).code).toBe(0);
    const { code, out: text } = await run("inspect", out, "--json");
    expect(code).toBe(0);
    const info = JSON.parse(text) as InspectJson;
    expect(info).toMatchObject({ file: out, version: 3, size: (await stat(out)).size });
    expect(info.devices.map((d) => d.id)).toEqual(["root.sg0.d0000", "root.sg0.d0002", "root.sg1.d0001", "root.sg1.d0003"]);
    for (const d of info.devices) {
      expect(d.startTime).toMatch(/^\d+$/);
      expect(BigInt(d.startTime ?? "0")).toBeLessThan(BigInt(d.endTime ?? "0"));
      expect(d.measurements.map((m) => m.dataType)).toEqual(["BOOLEAN", "DOUBLE", "FLOAT", "INT32", "INT64", "TEXT"]);
    }
  });

  test("generate --version 4 --devices 300 gives a v4 file whose inspection lists 300 devices and tables", async () => {
    const out = join(dir, "v4.tsfile");
    expect((await run("generate", out, "--size", "1MiB", "--devices", "300", "--version", "4")).code).toBe(0);
    const info = JSON.parse((await run("inspect", out, "--json")).out) as InspectJson;
    expect(info.version).toBe(4);
    expect(info.devices).toHaveLength(300);
    expect(info.tables).toEqual([]);
  });

  test("inspect of a truncated file prints the reason to stderr and exits 1", async () => {
    const whole = join(dir, "whole.tsfile");
    const cut = join(dir, "cut.tsfile");
    expect((await run("generate", whole, "--size", "64KiB")).code).toBe(0);
    const bytes = await readFile(whole);
    await writeFile(cut, bytes.subarray(0, bytes.length - 3));
    expect(await run("inspect", cut)).toEqual({
      code: 1,
      out: "",
      err: `invalid TsFile ${cut}: missing tail magic: file is unsealed or truncated\n`,
    });
  });

  test("inspect of a missing file exits 1 with the system's reason", async () => {
    const missing = join(dir, "nope.tsfile");
    const result = await run("inspect", missing);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(new RegExp(`^cannot read ${missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: ENOENT`));
  });
});

describe("usage", () => {
  test("--help prints the usage on stdout and exits 0", async () => {
    const { code, out } = await run("--help");
    expect(code).toBe(0);
    expect(out).toContain("tsync tsfile inspect FILE [--json]");
    expect(out).toContain("tsync tsfile generate OUT --size SIZE");
  });

  test("no subcommand, unknown subcommands, unknown flags and bad values exit 2 with a message", async () => {
    expect((await run()).code).toBe(2);
    expect(await run("frobnicate")).toMatchObject({ code: 2, err: expect.stringContaining('unknown subcommand "frobnicate"') });
    expect(await run("inspect", "x", "--bogus")).toMatchObject({ code: 2, err: expect.stringContaining("--bogus") });
    expect(await run("generate", join(dir, "x.tsfile"))).toMatchObject({ code: 2, err: expect.stringContaining("generate needs --size") });
    expect(await run("generate", join(dir, "x.tsfile"), "--size", "1TB")).toMatchObject({
      code: 2,
      err: expect.stringContaining('invalid size "1TB"'),
    });
    expect(await run("generate", join(dir, "x.tsfile"), "--size", "1MiB", "--version", "5")).toMatchObject({
      code: 2,
      err: expect.stringContaining("--version must be 3 or 4"),
    });
    expect(await run("generate", join(dir, "x.tsfile"), "--size", "1MiB", "--devices", "0")).toMatchObject({
      code: 2,
      err: expect.stringContaining("--devices must be an integer ≥ 1"),
    });
  });

  test("sizes accept B, KiB, MiB and GiB, case-insensitively", () => {
    expect(parseSize("512")).toBe(512);
    expect(parseSize("10B")).toBe(10);
    expect(parseSize("3KiB")).toBe(3072);
    expect(parseSize("1.5MiB")).toBe(1_572_864);
    expect(parseSize("1GiB")).toBe(2 ** 30);
    expect(parseSize("4gib")).toBe(4 * 2 ** 30);
    expect(() => parseSize("1GB")).toThrow('invalid size "1GB"');
    expect(() => parseSize("-1MiB")).toThrow('invalid size "-1MiB"');
  });
});
