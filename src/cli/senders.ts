// `tsync senders`: enrols, lists and removes the senders allowed on the embedded nats-server.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Effect } from "effect";
import { loadReceiverConfig } from "../config/receiver.js";
import { senderPermissions } from "../actors/receiver/embeddedAuth.js";
import { enrollSender, readSenderRegistry, registryPollMs, removeSender } from "../actors/receiver/senderRegistry.js";

const usage = "usage: tsync senders add ID --out FILE | tsync senders list [--json] | tsync senders remove ID   [--config FILE]\n";

const pickUp = `a running receiver applies it within ${Math.ceil((registryPollMs + 1000) / 1000)} seconds`;

/** `tsync senders add|list|remove`: who may connect to the receiver's embedded nats-server. */
export const runSenders = (args: string[]): Effect.Effect<number, unknown> => {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: "string", default: "conf/receiver.properties" },
      out: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const [sub, id] = positionals;
  return Effect.flatMap(loadReceiverConfig(values.config ?? "conf/receiver.properties"), (c) =>
    Effect.tryPromise({
      catch: (e) => e,
      try: async () => {
        const dataDir = resolve(c.receiver_data_directory);
        if (sub === "add" && id !== undefined) {
          if (values.out === undefined) {
            process.stderr.write(
              `tsync senders add: --out FILE is required: the sender's credential (an nkey seed) is written there, once\n${usage}`,
            );
            return 2;
          }
          const out = resolve(values.out);
          await mkdir(dirname(out), { recursive: true });
          // `wx`: never overwrite another sender's credential; 0600: the seed is the sender's password.
          const sender = await enrollSender(dataDir, id, (seed) => writeFile(out, seed + "\n", { mode: 0o600, flag: "wx" }));
          const lines = [
            `enrolled sender ${sender.id} (public key ${sender.nkey}); ${pickUp}`,
            `credential written to ${out}: copy it to the edge box and keep it secret (mode 600)`,
            "in that sender's sender.properties:",
            `  sender_name=${sender.id}`,
            `  nats_nkey_seed_file=<where you put ${out.split("/").pop() ?? "it"}>`,
          ];
          if (c.nats_url !== undefined)
            lines.push(
              "this receiver uses an external NATS server (nats_url): add the sender to its authorization users, e.g.",
              `  { nkey: "${sender.nkey}", permissions: ${senderPermissions(c.receiver_group, sender.id)} }`,
            );
          if (c.embedded_server_open)
            lines.push(
              "WARNING: embedded_server_open=true: the embedded server lets anyone in; enrollment takes effect only with it false",
            );
          process.stdout.write(lines.join("\n") + "\n");
          return 0;
        }
        if (sub === "list") {
          const senders = await readSenderRegistry(dataDir);
          if (values.json) process.stdout.write(JSON.stringify(senders, null, 2) + "\n");
          else if (senders.length === 0) process.stdout.write("no sender is enrolled\n");
          else for (const s of senders) process.stdout.write(`${s.id}\t${s.nkey}\tadded ${s.added}\n`);
          return 0;
        }
        if (sub === "remove" && id !== undefined) {
          const removed = await removeSender(dataDir, id);
          const effect =
            c.nats_url !== undefined
              ? `remove its user from the authorization of ${c.nats_url.join(", ")} too: that server, not this registry, decides who connects`
              : c.embedded_server_open
                ? "embedded_server_open=true lets anyone connect, so this revokes nothing until it is false"
                : `its connections are refused and its live session ends; ${pickUp}`;
          process.stdout.write(removed ? `removed sender ${id}: ${effect}\n` : `sender ${id} is not enrolled\n`);
          return removed ? 0 : 1;
        }
        process.stderr.write(usage);
        return 2;
      },
    }),
  );
};
