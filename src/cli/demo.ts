// `tsync demo`: a sample data directory, an embedded receiver and one sender round, end to end.
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Receiver } from "../actors/receiver/receiver.js";
import { enrollSender } from "../actors/receiver/senderRegistry.js";
import { validateTsFile } from "../actors/receiver/validateTsFile.js";
import { sha256OfFile } from "../files/fileDigest.js";
import { buildSampleDataDir } from "../actors/sampleDataDir.js";
import { Sender } from "../actors/sender/sender.js";
import { parseReceiverConfig } from "../config/receiver.js";
import { parseSenderConfig } from "../config/sender.js";
import { roundSucceeded } from "../machines/senderTypes.js";
import { Result } from "effect";
import { formatSummary } from "./summary.js";

const must = <A>(r: Result.Result<A, { message: string }>): A => {
  if (Result.isFailure(r)) throw new Error(r.failure.message);
  return r.success;
};

/**
 * `tsync demo`: a sub-factory's IoTDB data directory, a general factory's receiver on an embedded
 * nats-server, one sender round, and a look at what arrived where.
 */
export const runDemo = async (opts: { dir: string | undefined; keep: boolean }): Promise<number> => {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "tsync-demo-")));
  const edge = join(dir, "edge");
  const centre = join(dir, "centre");
  const say = (s: string) => process.stdout.write(s + "\n");
  say(`tsync demo in ${dir}`);
  const files = await buildSampleDataDir(edge);
  const sealed = files.filter((f) => f.sealed);
  say(
    `1. sub-factory data directory ${edge}: ${sealed.length} sealed TsFiles in ${new Set(sealed.map((f) => f.sg)).size} storage groups, 1 still being written`,
  );
  // The embedded server admits enrolled senders only: enroll the sub-factory as `tsync senders add` does.
  const credential = join(dir, "sub-factory-1.nk");
  const enrolled = await enrollSender(centre, "sub-factory-1", (seed) => writeFile(credential, seed + "\n", { mode: 0o600 }));
  say(`   enrolled sender ${enrolled.id} with the receiver (tsync senders add): its credential is ${relative(dir, credential)}`);
  const receiver = await Receiver.start({
    config: must(parseReceiverConfig({ is_sync_enable: "true", sync_server_port: "0", receiver_data_directory: centre }, {}, "demo")),
    validateTsFile,
    log: (l) => say(`   receiver: ${l}`),
  });
  let ok = false;
  try {
    say(`2. receiver listening on an embedded nats-server, port ${receiver.port}`);
    const sender = await Sender.open({
      config: must(
        parseSenderConfig(
          {
            data_directory: edge,
            server_ip: "127.0.0.1",
            server_port: String(receiver.port),
            sender_name: enrolled.id,
            nats_nkey_seed_file: credential,
          },
          {},
          "demo",
        ),
      ),
    });
    try {
      say(`3. sender ${sender.senderId}: one round`);
      const first = await sender.runOnce();
      say(formatSummary(first).replace(/^/gm, "   "));
      say("4. what arrived where:");
      let identical = 0;
      for (const f of sealed) {
        const arrived = join(centre, "sequence", f.sg, f.vg, f.tp, f.name);
        const s = await stat(arrived).catch(() => undefined);
        const same = s !== undefined && (await sha256OfFile(arrived)) === (await sha256OfFile(f.path));
        const resource = await stat(`${arrived}.resource`).then(
          () => true,
          () => false,
        );
        if (same && resource) identical++;
        say(
          `   ${relative(dir, arrived)} ${s ? `${s.size} bytes` : "MISSING"}${same ? ", identical" : ""}${resource ? ", with .resource" : ""}`,
        );
      }
      const unsealed = files.find((f) => !f.sealed);
      if (unsealed) {
        const there = await stat(join(centre, "sequence", unsealed.sg, unsealed.vg, unsealed.tp, unsealed.name)).then(
          () => true,
          () => false,
        );
        say(`   ${unsealed.name} (no .resource yet): ${there ? "SENT (wrong)" : "not sent, as it is not sealed"}`);
      }
      say("5. a second round finds nothing new:");
      const second = await sender.runOnce();
      say(formatSummary(second).replace(/^/gm, "   "));
      ok = roundSucceeded(first) && roundSucceeded(second) && identical === sealed.length && second.sent.length === 0;
      say(ok ? `demo ok: ${identical}/${sealed.length} files byte-identical on the receiver` : "demo FAILED");
    } finally {
      await sender.close();
    }
  } finally {
    await receiver.stop();
    if (!opts.keep && opts.dir === undefined) await rm(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
  return ok ? 0 : 1;
};
