// The plain alternative: upload each file to a NATS object store and download it again, with the
// native SHA-256 and tsync's chunk size. `objectStore.ts URL CHUNK ROOT OUTDIR LISTFILE` puts every
// file named in LISTFILE (paths relative to ROOT), then gets each into OUTDIR; prints one JSON line.
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { connect } from "@nats-io/transport-node";
import { Objm, setSha256Backend, StorageType } from "@nats-io/obj";

const [url, chunkText, root, outDir, listFile] = process.argv.slice(2);
if (!url || !chunkText || !root || !outDir || !listFile) throw new Error("usage: objectStore.ts URL CHUNK ROOT OUTDIR LISTFILE");
setSha256Backend("native");
const chunk = Number(chunkText);
const names = (await readFile(listFile, "utf8")).split("\n").filter(Boolean);
const nc = await connect({ servers: url, name: "bench-objectstore" });
const os = await new Objm(nc).create("bench", { storage: StorageType.File });
process.stdout.write("ready\n");

let bytes = 0;
const t0 = performance.now();
for (const name of names) {
  const stream = Readable.toWeb(createReadStream(join(root, name), { highWaterMark: chunk })) as ReadableStream<Uint8Array>;
  const info = await os.put({ name, options: { max_chunk_size: chunk } }, stream);
  bytes += info.size;
}
const putMs = performance.now() - t0;

const t1 = performance.now();
const made = new Set<string>();
for (const name of names) {
  const r = await os.get(name);
  if (!r) throw new Error(`object ${name} is missing`);
  const path = join(outDir, name);
  if (!made.has(dirname(path))) {
    made.add(dirname(path));
    await mkdir(dirname(path), { recursive: true });
  }
  const out = createWriteStream(path, { highWaterMark: chunk });
  for await (const c of r.data) if (!out.write(c)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  out.end();
  await finished(out);
  // The client compares the object's SHA-256 while reading; a mismatch rejects here.
  const error = await r.error;
  if (error) throw error;
}
const getMs = performance.now() - t1;
process.stdout.write(`${JSON.stringify({ putMs, getMs, bytes, files: names.length })}\n`);
// The figures are out; removing a bucket of tens of thousands of objects can outlast the client's
// request timeout, and the server's store directory goes with the run anyway.
await os.destroy().catch((e: unknown) => process.stderr.write(`object store: bucket not removed: ${String(e)}\n`));
await nc.close();
