// The cost of a round that finds nothing new.
// `unchangedRound.ts prime PORT CREDENTIALS DATADIR` records every sealed file of DATADIR as
// confirmed in the sender's work directory, as a finished earlier round would have (sending
// 100,000 files first would take most of the bench's time). `unchangedRound.ts rounds PORT
// CREDENTIALS DATADIR N` then times N rounds of an open sender, in a process of its own so its
// memory is the sender's alone; prints one JSON line: each round's time, and the process's RSS
// with its modules loaded (before the work directory is opened) and after the open.
import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { Effect, Result } from "effect";
import { appendToLog } from "../../src/files/appendLog.js";
import { sha256OfFile } from "../../src/files/fileDigest.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { WorkDir } from "../../src/actors/sender/workDir.js";
import { parseSenderConfig, senderWorkDirectory } from "../../src/config/sender.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { iotdbSource } from "../../src/plugins/sourceIotdb.js";

const [mode, portText, credentialsDir, dataDir, roundsText] = process.argv.slice(2);
if ((mode !== "prime" && mode !== "rounds") || !portText || !dataDir)
  throw new Error("usage: unchangedRound.ts prime|rounds PORT CREDENTIALS DATADIR [N]");
const parsed = parseSenderConfig(
  {
    data_directory: dataDir,
    server_ip: "127.0.0.1",
    server_port: portText,
    sender_name: "bench-unchanged",
    nats_nkey_seed_file: join(credentialsDir ?? "", "bench-unchanged.nk"),
  },
  {},
  "bench",
);
if (Result.isFailure(parsed)) throw new Error(parsed.failure.message);
const config = parsed.success;

/** Resident bytes now. */
const rss = (): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN) * 1024;

if (mode === "prime") {
  // The work directory made as the sender makes it (lock, identity), then its journal written a
  // partition at a time in the records the sender appends on each confirmation: a million
  // appends one by one would take minutes.
  const work = await WorkDir.open(senderWorkDirectory(config), config.sender_name);
  await work.close();
  const journal = join(senderWorkDirectory(config), "confirmed.jsonl");
  const byPartition = iotdbSource(dataDir).byPartition;
  if (!byPartition) throw new Error("the iotdb source lists by partition");
  // Hard links of a few templates: one digest per distinct inode is enough.
  const digests = new Map<string, string>();
  let files = 0;
  // A partition at a time, so a million files never sit in memory at once.
  for (const p of await Effect.runPromise(byPartition.stamps([]))) {
    const listing = await Effect.runPromise(byPartition.list(p));
    const stats = await Promise.all(listing.units.map((u) => Promise.all(u.parts.map((part) => stat(part.path)))));
    const records = [];
    for (const [i, unit] of listing.units.entries()) {
      const parts = [];
      for (const [j, part] of unit.parts.entries()) {
        const s = stats[i]![j]!;
        const key = `${s.dev}:${s.ino}`;
        let sha256 = digests.get(key);
        if (!sha256) digests.set(key, (sha256 = await sha256OfFile(part.path)));
        parts.push({ kind: part.kind, size: s.size, sha256, mtimeMs: s.mtimeMs });
      }
      records.push({ op: "add", unit: { ref: unit.ref, parts } });
    }
    await appendToLog(journal, records);
    files += listing.units.length;
  }
  process.stdout.write(`${JSON.stringify({ files })}\n`);
} else {
  const rssLoaded = rss();
  const sender = await Sender.open({ config });
  const rssOpened = rss();
  process.stdout.write("ready\n");
  const rounds: number[] = [];
  for (let i = 0; i < Number(roundsText ?? 3); i++) {
    const t0 = performance.now();
    const summary = await sender.runOnce();
    rounds.push(performance.now() - t0);
    if (!roundSucceeded(summary) || summary.sent.length > 0)
      throw new Error(`round ${i} was not a no-op: ${JSON.stringify({ sent: summary.sent.length, err: summary.roundError })}`);
  }
  process.stdout.write(`${JSON.stringify({ rounds, rssLoaded, rssOpened, rssEnd: rss() })}\n`);
  await sender.close();
}
