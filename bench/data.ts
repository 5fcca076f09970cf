// The bench's data: valid sealed TsFiles (with their .resource) in IoTDB 0.13 data-directory
// layout, written by the project's own generator so every tool moves the same bytes.
import { copyFile, link, mkdir, readdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateTsFileToPath, inspectTsFile } from "../src/actors/tsfileFiles.js";
import { serializeTsFileResource } from "../src/tsfile/resource.js";

/** IoTDB names sequence files `{time}-{version}-{inner}-{cross}.tsfile`. */
export const tsFileName = (i: number): string => `${1_700_000_000_000 + i * 1000}-${i + 1}-0-0.tsfile`;

export const partitionDir = (dataDir: string, sg: string, tp: number): string => join(dataDir, "sequence", sg, "0", String(tp));

/** Writes `dir/name` of about `bytes` and then its `.resource`, as IoTDB seals a file. */
export const writeSealed = async (dir: string, name: string, bytes: number, seed = 1): Promise<{ tsfile: string; size: number }> => {
  await mkdir(dir, { recursive: true });
  const tsfile = join(dir, name);
  await generateTsFileToPath(tsfile, { targetBytes: bytes, seed });
  const info = await inspectTsFile(tsfile);
  const resource = serializeTsFileResource({
    devices: info.devices.map((d) => ({ id: d.id, startTime: d.startTime ?? 0n, endTime: d.endTime ?? 0n })),
  });
  // The .resource appears by rename, so a watcher never sees a half-written one.
  await writeFile(`${tsfile}.resource.temp`, resource);
  await rename(`${tsfile}.resource.temp`, `${tsfile}.resource`);
  return { tsfile, size: (await stat(tsfile)).size };
};

export interface Tree {
  readonly dataDir: string;
  /** Every TsFile (without its .resource). */
  readonly files: ReadonlyArray<string>;
  /** Bytes of the TsFiles and their resources. */
  readonly bytes: number;
}

const resourceOf = (tsfile: string) => `${tsfile}.resource`;

const sizeOf = async (files: ReadonlyArray<string>): Promise<number> => {
  let total = 0;
  for (const f of files) total += (await stat(f)).size + (await stat(resourceOf(f))).size;
  return total;
};

/**
 * `writeSealed` at a TsFile size close to `bytes`: the generator's size is an estimate that falls
 * short by a few KiB (16 KiB asked, about 11 KiB written), so the request grows by the shortfall
 * and the file is written again until it is within 5 % (four tries at most; sizes of 64 KiB and
 * up land there at once).
 */
const writeSealedNear = async (dir: string, name: string, bytes: number, seed: number): Promise<string> => {
  let ask = bytes;
  for (let attempt = 1; ; attempt++) {
    const { tsfile, size } = await writeSealed(dir, name, ask, seed);
    if (Math.abs(size - bytes) <= bytes * 0.05 || attempt === 4) return tsfile;
    ask = Math.max(1, ask + bytes - size);
  }
};

/** A few distinct templates, copied round-robin: no tool here deduplicates across files. */
const templates = async (dir: string, count: number, bytes: number): Promise<string[]> => {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(await writeSealedNear(dir, tsFileName(i), bytes, i + 1));
  return out;
};

const place = async (
  tmpl: ReadonlyArray<string>,
  count: number,
  target: (i: number) => string,
  how: "copy" | "link",
  concurrency = 32,
): Promise<string[]> => {
  const files: string[] = new Array<string>(count);
  const made = new Map<string, Promise<unknown>>();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const src = tmpl[i % tmpl.length]!;
      const dest = target(i);
      const dir = dest.slice(0, dest.lastIndexOf("/"));
      if (!made.has(dir)) made.set(dir, mkdir(dir, { recursive: true }));
      await made.get(dir);
      if (how === "copy") {
        await copyFile(src, dest);
        await copyFile(resourceOf(src), resourceOf(dest));
      } else {
        await link(src, dest);
        await link(resourceOf(src), resourceOf(dest));
      }
      files[i] = dest;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return files;
};

/** `count` TsFiles of about `bytes` each, `perPartition` to a time-partition directory. */
export const smallFilesTree = async (
  scratch: string,
  dataDir: string,
  opts: { count: number; bytes: number; sg?: string; perPartition?: number; how?: "copy" | "link" },
): Promise<Tree> => {
  const tmpl = await templates(join(scratch, "templates"), Math.min(16, opts.count), opts.bytes);
  const per = opts.perPartition ?? 500;
  const sg = opts.sg ?? "root.bench";
  const files = await place(
    tmpl,
    opts.count,
    (i) => join(partitionDir(dataDir, sg, Math.floor(i / per)), tsFileName(i)),
    opts.how ?? "copy",
  );
  return { dataDir, files, bytes: await sizeOf(files) };
};

/** One big TsFile and its resource. */
export const bigFileTree = async (dataDir: string, bytes: number): Promise<Tree> => {
  const { tsfile } = await writeSealed(partitionDir(dataDir, "root.bench", 0), tsFileName(0), bytes, 7);
  return { dataDir, files: [tsfile], bytes: await sizeOf([tsfile]) };
};

/** Every regular file under `dir`, relative, sorted: what `find -type f` lists. */
export const listFiles = async (dir: string): Promise<string[]> => {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
};
