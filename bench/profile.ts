// One tsync transfer, measured per process and optionally profiled: what docs/benchmarks.md's
// CPU breakdowns come from.
//   npx tsx bench/profile.ts big [MiB=512]              one file of MiB, twice
//   npx tsx bench/profile.ts small [N=1000] [KiB=256]   N small files
//   (big also runs raw NATS request/reply over the same file, the transport's own CPU per MiB)
//   add --prof: each tsync process writes a V8 CPU profile (.cpuprofile) into bench/out/profiles/
// Prints wall time, rate and CPU per MiB (or per file) of the sender, the receiver and nats-server.
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { buildBundle } from "./bundle.js";
import { bigFileTree, smallFilesTree } from "./data.js";
import { rawNats } from "./peers.js";
import { repoRoot, senderOnce, startReceiver } from "./tsyncProcs.js";
import { tsyncChunk, tsyncWindow } from "./workloads.js";

const MiB = 1024 * 1024;
const args = process.argv.slice(2).filter((a) => a !== "--prof");
const prof = process.argv.includes("--prof");
const [mode = "big", first, second] = args;
const base = join(repoRoot, "bench", "out", "profile-run");
const profiles = join(repoRoot, "bench", "out", "profiles");
await rm(base, { recursive: true, force: true });
await mkdir(base, { recursive: true });
if (prof) await mkdir(profiles, { recursive: true });
const bundle = await buildBundle();
if ("error" in bundle) throw new Error(bundle.error);
const spawn = { bin: bundle.entry, nodeFlags: prof ? ["--cpu-prof", `--cpu-prof-dir=${profiles}`] : [] };
try {
  const big = mode === "big";
  const tree = big
    ? await bigFileTree(join(base, "edge"), Number(first ?? 512) * MiB)
    : await smallFilesTree(join(base, "scratch"), join(base, "edge"), {
        count: Number(first ?? 1000),
        bytes: Number(second ?? 256) * 1024,
      });
  for (let run = 0; run < (big ? 2 : 1); run++) {
    const receiver = await startReceiver(join(base, `receiver-${run}`), {}, spawn);
    try {
      const s = await senderOnce(join(base, `sender-${run}`), tree.dataDir, receiver.port, receiver.credentials("bench"), spawn, [
        receiver.proc.rss,
      ]);
      const per = big ? tree.bytes / MiB : tree.files.length;
      const cpu = Object.entries(s.cpu)
        .filter(([, v]) => v >= 0.005)
        .map(([k, v]) => `${k} ${((v * 1000) / per).toFixed(2)}`)
        .join(", ");
      const rate = big
        ? `${(tree.bytes / 1e6 / (s.ms / 1000)).toFixed(0)} MB/s`
        : `${(tree.files.length / (s.ms / 1000)).toFixed(1)} files/s`;
      console.log(
        `${big ? `${(tree.bytes / MiB).toFixed(0)} MiB` : `${tree.files.length} files`} in ${(s.ms / 1000).toFixed(2)} s, ${rate}; CPU ms per ${big ? "MiB" : "file"}: ${cpu}`,
      );
    } finally {
      await receiver.stop();
      await rm(join(tree.dataDir, "sync-sender"), { recursive: true, force: true });
    }
  }
  if (big) {
    const raw = await rawNats(base, tree.files, tsyncChunk, tsyncWindow);
    const cpu = Object.entries(raw.cpu ?? {})
      .map(([k, v]) => `${k} ${((v * 1000) / (tree.bytes / MiB)).toFixed(2)}`)
      .join(", ");
    console.log(`raw request/reply: ${(tree.bytes / 1e6 / raw.seconds).toFixed(0)} MB/s; CPU ms per MiB: ${cpu}`);
  }
  if (prof) console.log(`profiles in ${profiles} (open in Chrome DevTools, Performance tab)`);
} finally {
  await rm(base, { recursive: true, force: true });
  await rm(bundle.dir, { recursive: true, force: true });
}
