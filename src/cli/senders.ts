// `tsync senders`: enrols, lists and removes the senders allowed on the embedded nats-server.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { Effect } from "effect";
import { loadReceiverConfig, type ReceiverConfig } from "../config/receiver.js";
import { senderPermissions, sendersPermissions } from "../actors/receiver/embeddedAuth.js";
import { isToken } from "../protocol/names.js";
import { enrollSender, readSenderRegistry, registryPollMs, removeSender } from "../actors/receiver/senderRegistry.js";

const pickUp = `a running receiver applies it within ${Math.ceil((registryPollMs + 1000) / 1000)} seconds`;

/** Runs `use` with the receiver's config (its data directory resolved). */
const withReceiverConfig = (
  configPath: string,
  use: (c: ReceiverConfig, dataDir: string) => Promise<number>,
): Effect.Effect<number, unknown> =>
  Effect.flatMap(loadReceiverConfig(configPath), (c) =>
    Effect.tryPromise({ catch: (e) => e, try: () => use(c, resolve(c.receiver_data_directory)) }),
  );

/** `tsync senders add ID --out FILE`: enrolls an edge box and writes its credential, once. */
export const addSender = (configPath: string, id: string, outPath: string): Effect.Effect<number, unknown> =>
  withReceiverConfig(configPath, async (c, dataDir) => {
    const out = resolve(outPath);
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
      lines.push("WARNING: embedded_server_open=true: the embedded server lets anyone in; enrollment takes effect only with it false");
    process.stdout.write(lines.join("\n") + "\n");
    return 0;
  });

/** `tsync senders list`: who may connect. */
export const listSenders = (configPath: string, json: boolean): Effect.Effect<number, unknown> =>
  withReceiverConfig(configPath, async (_c, dataDir) => {
    const senders = await readSenderRegistry(dataDir);
    if (json) process.stdout.write(JSON.stringify(senders, null, 2) + "\n");
    else if (senders.length === 0) process.stdout.write("no sender is enrolled\n");
    else for (const s of senders) process.stdout.write(`${s.id}\t${s.nkey}\tadded ${s.added}\n`);
    return 0;
  });

/** `tsync senders remove ID`: revokes a sender; 1 when it was not enrolled. */
export const removeSenderCommand = (configPath: string, id: string): Effect.Effect<number, unknown> =>
  withReceiverConfig(configPath, async (c, dataDir) => {
    const removed = await removeSender(dataDir, id);
    const effect =
      c.nats_url !== undefined
        ? `remove its user from the authorization of ${c.nats_url.join(", ")} too: that server, not this registry, decides who connects`
        : c.embedded_server_open
          ? "embedded_server_open=true lets anyone connect, so this revokes nothing until it is false"
          : `its connections are refused and its live session ends; ${pickUp}`;
    process.stdout.write(removed ? `removed sender ${id}: ${effect}\n` : `sender ${id} is not enrolled\n`);
    return removed ? 0 : 1;
  });

/**
 * `tsync senders site SITE --senders ID,...`: the hub's user for one edge site's leaf node, whose
 * permissions are what its senders may do together, and what goes with it at the site and on the
 * receivers (docs/scale-out.md). Exits 2 on a bad site name or sender id.
 */
export const printSiteUser = (configPath: string, site: string, senders: string): Effect.Effect<number, unknown> =>
  withReceiverConfig(configPath, async (c) => {
    const ids = senders
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    const bad = [site, ...ids].filter((s) => !isToken(s));
    if (ids.length === 0 || bad.length > 0) {
      process.stderr.write(
        `tsync senders site: ${ids.length === 0 ? "--senders names no sender" : `${bad.map((b) => JSON.stringify(b)).join(", ")} is not an id of 1-64 letters, digits, '_' or '-'`}\n`,
      );
      return 2;
    }
    const lines = [
      `# on the hub, in the top-level authorization { users: [...] } (nats-server 2.9 takes no permissions in leafnodes { authorization }):`,
      `{ user: "${site}", password: "<choose one>", permissions: ${sendersPermissions(c.receiver_group, ids)} }`,
      `# on ${site}'s leaf server, one URL per hub node:`,
      `leafnodes { remotes: [ { url: "nats-leaf://${site}:<that password>@<hub node>:7422" } ] }`,
      `# on ${site}'s leaf server, each sender's own user there, e.g. for ${ids[0]}:`,
      `{ user: "${ids[0]}", password: "<another>", permissions: ${senderPermissions(c.receiver_group, ids[0] ?? "")} }`,
      "# on every receiver: admit_leaf_nodes=true, and nats_monitor_url with every hub node's monitoring URL",
    ];
    process.stdout.write(lines.join("\n") + "\n");
    return 0;
  });
