import { fc, test } from "@fast-check/vitest";
import { beforeAll, describe, expect } from "vitest";
import { TsFileFormatError } from "../../src/tsfile/bytes.js";
import { readTsFile } from "../../src/tsfile/reader.js";
import { generateTsFile, writeTsFileBytes, type TsFileSpec } from "../../src/tsfile/writer.js";
import { failWithoutFixturesUnderCi, fixturesFound, memorySource, readFixture } from "./fixtures.js";

failWithoutFixturesUnderCi();

interface Sample {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly metaOffset: number;
}

const VALID_FIXTURES = [
  "public/v3TsFile.tsfile",
  "public/smoke_test.write_record.tsfile",
  "public/test_cpp.tsfile",
  "generated/gen_v3_min.tsfile",
  "generated/gen_v4_min.tsfile",
  "generated/gen_v3_tree.tsfile",
  "generated/gen_v4_tree.tsfile",
  "generated/gen_v4_table.tsfile",
];

const mixedSpec: TsFileSpec = {
  devices: [
    {
      path: "root.ln.wf01.wt01.x",
      measurements: [
        { name: "status", dataType: "BOOLEAN", timestamps: [1n, 5n], values: [true, false] },
        { name: "temperature", dataType: "FLOAT", timestamps: [1n, 2n, 9n], values: [20.5, 21, -3] },
        { name: "note", dataType: "TEXT", timestamps: [3n], values: ["héllo"] },
      ],
    },
    { path: "root.ln.d2", measurements: [{ name: "n", dataType: "INT32", timestamps: [-5n, 0n, 5n], values: [-1, 0, 1] }] },
  ],
};

const samples: Sample[] = [];

async function addSample(name: string, bytes: Uint8Array): Promise<void> {
  const info = await readTsFile(memorySource(bytes));
  samples.push({ name, bytes, metaOffset: info.metaOffset });
}

beforeAll(async () => {
  await addSample("writer v3", writeTsFileBytes(mixedSpec, { version: 3 }));
  await addSample("writer v4", writeTsFileBytes(mixedSpec, { version: 4 }));
  const pieces: Uint8Array[] = [];
  // 300 devices: INTERNAL_DEVICE nodes and multi-chunk series in a file small enough to parse hundreds of times.
  await generateTsFile(async (p) => void pieces.push(p), { targetBytes: 120_000, devices: 300, seed: 3 });
  await addSample("generated 300 devices", new Uint8Array(Buffer.concat(pieces)));
  if (fixturesFound) for (const f of VALID_FIXTURES) await addSample(f, await readFixture(f));
});

/** Reads `bytes` and returns what happened; fails the test on any other error or any out-of-range read. */
async function outcome(bytes: Uint8Array): Promise<"valid" | "invalid"> {
  const source = memorySource(bytes);
  try {
    await readTsFile(source);
    return "valid";
  } catch (error) {
    if (!(error instanceof TsFileFormatError)) throw error;
    expect(error.reason.length).toBeGreaterThan(0);
    return "invalid";
  } finally {
    expect(source.outOfBounds).toEqual([]);
  }
}

const sampleIndex = fc.nat();
const pick = (i: number): Sample => {
  const s = samples[i % samples.length];
  if (!s) throw new Error("no samples");
  return s;
};

describe("reader robustness", () => {
  test("the corpus holds the writer's files and, when present, every valid fixture", () => {
    expect(samples.length).toBe(3 + (fixturesFound ? VALID_FIXTURES.length : 0));
  });

  test.prop([sampleIndex, fc.nat()], { numRuns: 300 })(
    "every strict prefix of a valid file is rejected with TsFileFormatError and no read leaves [0, size)",
    async (i, cut) => {
      const { bytes } = pick(i);
      expect(await outcome(bytes.subarray(0, cut % bytes.length))).toBe("invalid");
    },
  );

  test.prop([sampleIndex, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean()), { minLength: 1, maxLength: 8 })], {
    numRuns: 500,
  })(
    "byte flips anywhere (mostly in the index) end as a result or a TsFileFormatError, never another error or an out-of-range read",
    async (i, flips) => {
      const { bytes, metaOffset } = pick(i);
      const copy = bytes.slice();
      for (const [at, mask, inIndex] of flips) {
        const position = inIndex ? metaOffset + (at % (bytes.length - metaOffset)) : at % bytes.length;
        copy[position] = (copy[position] ?? 0) ^ mask;
      }
      await outcome(copy);
    },
  );

  test.prop([fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.integer({ min: -10, max: 500 }), fc.constantFrom(3, 4)], { numRuns: 500 })(
    "random bodies between a valid head and tail never escape as anything but TsFileFormatError",
    async (body, metaSize, version) => {
      const file = Buffer.concat([Buffer.from("TsFile"), Buffer.of(version), body, Buffer.alloc(4), Buffer.from("TsFile")]);
      file.writeInt32BE(metaSize, file.length - 10);
      await outcome(new Uint8Array(file));
    },
  );

  test.prop([sampleIndex, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 })], { numRuns: 300 })(
    "a valid index with random bytes spliced into it is still only ever rejected with TsFileFormatError",
    async (i, at, junk) => {
      const { bytes, metaOffset } = pick(i);
      const position = metaOffset + (at % (bytes.length - metaOffset));
      await outcome(new Uint8Array(Buffer.concat([bytes.subarray(0, position), junk, bytes.subarray(position)])));
    },
  );
});
