// Shared by the TsFile tests: where the shared fixtures are, and in-memory sources that log every read.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import type { TsFileSource } from "../../src/tsfile/reader.js";

/** `../shared/fixtures/tsfile` from the project root; never copied into the project. */
export const fixturesUrl = new URL("../../../shared/fixtures/tsfile/", import.meta.url);
export const fixturesDir = fileURLToPath(fixturesUrl);
export const fixturesFound = existsSync(fixturesDir);
const fixturesRequired = process.env["CI"] === "true";

if (!fixturesFound && !fixturesRequired) console.log(`fixtures not found at ${fixturesDir}: skipping fixture tests`);

/** Call at the top of a test file: under CI=true a missing fixtures folder fails instead of skipping. */
export function failWithoutFixturesUnderCi(): void {
  test.runIf(!fixturesFound && fixturesRequired)("the shared TsFile fixtures exist (required when CI=true)", () => {
    expect.fail(`fixtures not found at ${fixturesDir}`);
  });
}

export const fixturePath = (relative: string): string => fileURLToPath(new URL(relative, fixturesUrl));

export const readFixture = async (relative: string): Promise<Uint8Array> => new Uint8Array(await readFile(new URL(relative, fixturesUrl)));

export interface LoggedSource extends TsFileSource {
  readonly reads: { offset: number; length: number }[];
  /** Reads that asked for bytes outside [0, size): must stay empty. */
  readonly outOfBounds: { offset: number; length: number }[];
}

/** A source over bytes in memory that records every read and every out-of-bounds request. */
export function memorySource(bytes: Uint8Array): LoggedSource {
  const reads: { offset: number; length: number }[] = [];
  const outOfBounds: { offset: number; length: number }[] = [];
  return {
    size: bytes.length,
    reads,
    outOfBounds,
    read(offset, length) {
      reads.push({ offset, length });
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > bytes.length) {
        outOfBounds.push({ offset, length });
        return Promise.reject(new RangeError(`read [${offset}, ${offset + length}) outside [0, ${bytes.length})`));
      }
      return Promise.resolve(bytes.slice(offset, offset + length));
    },
  };
}

/** JSON with bigints as strings, for readable diffs. */
export const plain = (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)));
