// The cost of a round that finds nothing new.
// `unchangedRound.ts prime PORT DATADIR` records every sealed file of DATADIR as confirmed in the
// sender's work directory, as a finished earlier round would have (sending 100,000 files first
// would take most of the bench's time). `unchangedRound.ts rounds PORT DATADIR N` then times N
// rounds of an open sender, in a process of its own so its memory is the sender's alone; prints
// one JSON line.
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { Effect, Result } from "effect";
import { sha256OfFile } from "../../src/files/fileDigest.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { WorkDir } from "../../src/actors/sender/workDir.js";
import { parseSenderConfig, senderWorkDirectory } from "../../src/config/sender.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { iotdbSource } from "../../src/plugins/sourceIotdb.js";

const [mode, portText, credentialsDir, dataDir, roundsText] = process.argv.slice(2);
if ((mode !== "prime" && mode !== "rounds") || !portText || !dataDir)
  throw new Error("usage: unchangedRound.ts prime|rounds PORT DATADIR [N]");
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

if (mode === "prime") {
  const work = await WorkDir.open(senderWorkDirectory(config), config.sender_name);
  const listing = await Effect.runPromise(iotdbSource(dataDir).list([]));
  // Hard links of a few templates: one digest per distinct inode is enough.
  const digests = new Map<string, string>();
  for (const unit of listing.units) {
    const parts = [];
    for (const p of unit.parts) {
      const s = await stat(p.path);
      const key = `${s.dev}:${s.ino}`;
      let sha256 = digests.get(key);
      if (!sha256) digests.set(key, (sha256 = await sha256OfFile(p.path)));
      parts.push({ kind: p.kind, size: s.size, sha256, mtimeMs: s.mtimeMs });
    }
    await work.confirm({ ref: unit.ref, parts });
  }
  await work.close();
  process.stdout.write(`${JSON.stringify({ files: listing.units.length })}\n`);
} else {
  const sender = await Sender.open({ config });
  process.stdout.write("ready\n");
  const rounds: number[] = [];
  for (let i = 0; i < Number(roundsText ?? 3); i++) {
    const t0 = performance.now();
    const summary = await sender.runOnce();
    rounds.push(performance.now() - t0);
    if (!roundSucceeded(summary) || summary.sent.length > 0)
      throw new Error(`round ${i} was not a no-op: ${JSON.stringify({ sent: summary.sent.length, err: summary.roundError })}`);
  }
  process.stdout.write(`${JSON.stringify({ rounds })}\n`);
  await sender.close();
}
