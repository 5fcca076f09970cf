// CPU per MiB: raw vs tsync
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { execSync } from "node:child_process";
import { bigFileTree } from "./data.js";
import { startNatsServer } from "../src/actors/natsServer.js";
import { start } from "./procs.js";
import { startReceiver, startSender, writeSenderConf } from "./tsyncProcs.js";
import { RssWatch } from "./procs.js";
const root = await mkdtemp("/tmp/tsb-");
const mib = Number(process.argv[2] ?? 256);
const tree = await bigFileTree(join(root, "edge"), mib * 1048576);
execSync("sync");
const diff = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.entries(b).map(([k, v]) => [k, +(((v - (a[k] ?? 0)) * 1000) / mib).toFixed(2)]));
if (process.argv.includes("raw")) {
  const srv = await startNatsServer({ dir: join(root, "nats") });
  const sw = new RssWatch(srv.pid, () => "nats");
  const resp = start(process.execPath, ["--import", "tsx", "bench/children/rawNats.ts", "responder", srv.url, "bench.raw"], { role: "responder" });
  await resp.line(/ready/);
  const req = start(process.execPath, ["--import", "tsx", "bench/children/rawNats.ts", "requester", srv.url, "bench.raw", String(1048576 - 4096), "16", tree.files[0]!], { role: "requester" });
  await req.line(/ready/);
  const c0 = { ...(await req.rss.cpuNow()), ...(await resp.rss.cpuNow()), ...(await sw.cpuNow()) };
  const { match } = await req.line(/(\{.*\})/);
  const c1 = { ...(await req.rss.cpuNow()), ...(await resp.rss.cpuNow()), ...(await sw.cpuNow()) };
  const r = JSON.parse(match[1]!);
  console.log("raw", (r.bytes / r.ms / 1000).toFixed(0), "MB/s; cpu ms/MiB", diff(c0, c1));
  await req.exited; await resp.stop(); await srv.stop();
} else {
  const r = await startReceiver(join(root, "r"), {}, process.env.RFLAGS ? { nodeFlags: process.env.RFLAGS.split(" ") } : {});
  const conf = await writeSenderConf(join(root, "s"), tree.dataDir, r.port);
  const s = startSender(join(root, "s"), conf, true);
  const began = await s.line(/INFO  sender: sender \S+ for /);
  const c0 = { ...(await s.rss.cpuNow()), ...(await r.proc.rss.cpuNow()) };
  const ended = s.line(/round ok/); await ended;
  const c1 = { ...(await s.rss.cpuNow()), ...(await r.proc.rss.cpuNow()) };
  const e = await s.exited;
  console.log("tsync", (tree.bytes / (e.at - began.at) / 1000).toFixed(0), "MB/s; cpu ms/MiB", diff(c0, c1));
  await r.stop();
}
await rm(root, { recursive: true, force: true });
