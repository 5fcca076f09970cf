// The transport ceiling: raw NATS request/reply with tsync's chunk size and window, no digest,
// no disk on the responder. `responder URL SUBJECT` acks every chunk; `requester URL SUBJECT
// CHUNK WINDOW FILE...` reads each file in chunks and keeps WINDOW requests in flight.
import { open } from "node:fs/promises";
import { connect } from "@nats-io/transport-node";

const [mode, url, subject, ...rest] = process.argv.slice(2);
if (!url || !subject) throw new Error("usage: rawNats.ts responder|requester URL SUBJECT ...");
const nc = await connect({ servers: url, name: `bench-raw-${mode}` });

if (mode === "responder") {
  const ack = new TextEncoder().encode('{"code":0,"message":""}');
  const sub = nc.subscribe(subject);
  await nc.flush();
  process.stdout.write("ready\n");
  process.once("SIGTERM", () => void nc.drain().then(() => process.exit(0)));
  for await (const m of sub) m.respond(ack);
} else {
  const [chunkText, windowText, ...files] = rest;
  const chunk = Number(chunkText);
  const window = Number(windowText);
  process.stdout.write("ready\n");
  const t0 = performance.now();
  let bytes = 0;
  for (const path of files) {
    const file = await open(path, "r");
    const size = (await file.stat()).size;
    const inflight = new Set<Promise<unknown>>();
    for (let pos = 0; pos < size; ) {
      while (inflight.size >= window) await Promise.race(inflight);
      const len = Math.min(chunk, size - pos);
      const buf = Buffer.allocUnsafe(len);
      const { bytesRead } = await file.read(buf, 0, len, pos);
      pos += bytesRead;
      const p: Promise<unknown> = nc.request(subject, buf, { timeout: 60_000 }).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
    await file.close();
    bytes += size;
  }
  const ms = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ ms, bytes })}\n`);
  await nc.close();
}
