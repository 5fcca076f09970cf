// Many senders in one process, started at the same instant, each with its own data directory,
// NATS connection and work directory: the fan-in workloads. `senders.ts PORT CREDENTIALS_DIR
// DATADIR...` (a receiver's embedded server, each sender with its enrolled key) or `senders.ts
// --cluster NATS_URLS RECEIVER_GROUP DATADIR...` (a cluster without authorization) prints one JSON
// line with each sender's round start, end and files.
import { join } from "node:path";
import { Result } from "effect";
import { Sender } from "../../src/actors/sender/sender.js";
import { parseSenderConfig } from "../../src/config/sender.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";

const cluster = process.argv[2] === "--cluster";
const [portText, credentialsDir, ...dataDirs] = process.argv.slice(cluster ? 3 : 2);
if (!portText || dataDirs.length === 0)
  throw new Error("usage: senders.ts PORT CREDENTIALS_DIR DATADIR... | senders.ts --cluster NATS_URLS RECEIVER_GROUP DATADIR...");

const senders = await Promise.all(
  dataDirs.map(async (dir, i) => {
    const config = parseSenderConfig(
      cluster
        ? { data_directory: dir, nats_url: portText, receiver_group: credentialsDir ?? "", sender_name: `bench-${i}` }
        : {
            data_directory: dir,
            server_ip: "127.0.0.1",
            server_port: portText,
            sender_name: `bench-${i}`,
            nats_nkey_seed_file: join(credentialsDir ?? "", `bench-${i}.nk`),
          },
      {},
      "bench",
    );
    if (Result.isFailure(config)) throw new Error(config.failure.message);
    return Sender.open({ config: config.success });
  }),
);
process.stdout.write("ready\n");

const t0 = performance.now();
const rounds = await Promise.all(
  senders.map(async (s) => {
    const summary = await s.runOnce();
    const end = performance.now() - t0;
    if (!roundSucceeded(summary))
      throw new Error(`sender ${s.senderId}: ${summary.roundError ?? JSON.stringify(summary.failed.slice(0, 3))}`);
    return { endMs: end, files: summary.sent.length, bytes: summary.bytesSent };
  }),
);
process.stdout.write(`${JSON.stringify({ rounds })}\n`);
await Promise.all(senders.map((s) => s.close()));
