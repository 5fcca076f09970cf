// `tsync owners`: lists storage-group owners and releases a group.
import { OwnershipRegistry, type Owner, type PendingTransfer } from "../actors/receiver/ownership.js";
import { Effect, type Scope } from "effect";
import type { NatsConnection } from "@nats-io/transport-node";
import { loadReceiverConfig, type ReceiverConfig } from "../config/receiver.js";
import { receiverNats } from "./receiverConnection.js";

/** Runs `use` with the receiver's config and an admin connection, both released when the command ends. */
const withReceiverNats = (configPath: string, use: (nc: NatsConnection, c: ReceiverConfig) => Promise<number>) =>
  Effect.gen(function* () {
    const c = yield* loadReceiverConfig(configPath);
    const nc = yield* receiverNats(c);
    return yield* Effect.tryPromise({ try: () => use(nc, c), catch: (e) => e });
  });

const ownerRow = (o: Owner): string =>
  `${o.sg}\t${o.senderId}\tsince ${o.since}${o.inheritsFrom.length > 0 ? `\tinherits the files of ${o.inheritsFrom.join(", ")}` : ""}\n`;

// "-" where the sender goes: a pending transfer has no owner, and scripts split on the tabs.
const transferRow = (t: PendingTransfer): string =>
  `${t.sg}\t-\treleased ${t.releasedAt}\tthe next owner inherits the files of ${t.filesOf.join(", ")}\n`;

/** `tsync owners list`: storage groups and their owners, and transfers pending. */
export const listOwners = (configPath: string, json: boolean): Effect.Effect<number, unknown, Scope.Scope> =>
  withReceiverNats(configPath, async (nc, c) => {
    const { owners, transfers } = await (await OwnershipRegistry.open(nc, c.receiver_group)).records();
    const records = [...owners, ...transfers].sort((a, b) => (a.sg < b.sg ? -1 : a.sg > b.sg ? 1 : 0));
    if (json) process.stdout.write(JSON.stringify(records, null, 2) + "\n");
    else if (records.length === 0) process.stdout.write("no storage group has an owner yet\n");
    else for (const r of records) process.stdout.write("senderId" in r ? ownerRow(r) : transferRow(r));
    return 0;
  });

/** `tsync owners release GROUP --yes [--transfer-files]`; without --yes it says what it would do and exits 2. */
export const releaseOwner = (
  configPath: string,
  group: string,
  o: { readonly yes: boolean; readonly transferFiles: boolean },
): Effect.Effect<number, unknown, Scope.Scope> => {
  const transferFiles = o.transferFiles;
  if (!o.yes) {
    process.stderr.write(
      transferFiles
        ? `releasing ${group} with --transfer-files lets the next sender that loads a file of it become its owner, and overwrite and delete the files its owners loaded; add --yes to do it\n`
        : `releasing ${group} lets the next sender that loads a file of it become its owner (the files already loaded stay their senders'); add --yes to do it\n`,
    );
    return Effect.succeed(2);
  }
  return withReceiverNats(configPath, async (nc, c) => {
    const r = await (await OwnershipRegistry.open(nc, c.receiver_group)).releaseGroup(group, { transferFiles });
    switch (r.kind) {
      case "released":
        process.stdout.write(
          r.transfer ? `released ${group}; its next owner inherits the files of ${r.transfer.filesOf.join(", ")}\n` : `released ${group}\n`,
        );
        return 0;
      case "transferCancelled":
        process.stdout.write(`${group} had no owner; cancelled the transfer of the files of ${r.transfer.filesOf.join(", ")}\n`);
        return 0;
      case "transferPending":
        process.stdout.write(`${group} has no owner; its next owner already inherits the files of ${r.transfer.filesOf.join(", ")}\n`);
        return 1;
      case "none":
        process.stdout.write(`${group} had no owner\n`);
        return 1;
    }
  });
};
