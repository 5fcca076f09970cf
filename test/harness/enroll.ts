import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NatsClientSettings } from "../../src/actors/natsConnect.js";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { enrollSender } from "../../src/actors/receiver/senderRegistry.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { noAuth } from "../security/kit.js";
import { receiverConfig } from "./configs.js";

/**
 * Enrolls sender `id` with the receiver whose data directory is `receiverDataDir`, as
 * `tsync senders add` does, and answers the sender properties that use the credential.
 * The credential file goes to `credDir` (default: beside the receiver's data directory).
 */
export const enroll = async (
  receiverDataDir: string,
  id: string,
  credDir = join(receiverDataDir, ".."),
): Promise<Record<string, string>> => {
  const seedFile = join(credDir, `${id}.nk`);
  await enrollSender(receiverDataDir, id, (seed) => writeFile(seedFile, seed + "\n", { mode: 0o600 }));
  return { sender_name: id, nats_nkey_seed_file: seedFile };
};

export interface EnrolledReceiver {
  readonly receiver: Receiver;
  readonly centre: string;
  /** Where senders connect: the embedded server on loopback. */
  readonly url: string;
  /** Sender properties of each enrolled id (name and credential file). */
  readonly senders: Readonly<Record<string, Record<string, string>>>;
  /** Client settings of enrolled sender `id` (its nkey). */
  readonly as: (id: string) => NatsClientSettings;
  readonly logs: string[];
}

/**
 * A receiver on its default embedded nats-server (authentication on), with `ids` enrolled first,
 * as an operator sets one up: `tsync senders add` for each edge box, then `tsync receiver`.
 */
export const startEnrolledReceiver = async (
  root: string,
  name: string,
  ids: ReadonlyArray<string>,
  props: Record<string, string> = {},
): Promise<EnrolledReceiver> => {
  const centre = join(root, `${name}-centre`);
  const senders: Record<string, Record<string, string>> = {};
  const credDir = join(root, `${name}-credentials`);
  await mkdir(credDir, { recursive: true });
  for (const id of ids) senders[id] = await enroll(centre, id, credDir);
  const logs: string[] = [];
  const receiver = await Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      sync_server_port: "0",
      receiver_group: name,
      receiver_data_directory: centre,
      ...props,
    }),
    validateTsFile,
    log: (l) => void logs.push(l),
  });
  return {
    receiver,
    centre,
    url: `127.0.0.1:${receiver.port}`,
    senders,
    logs,
    as: (id) => ({ ...noAuth, nats_nkey_seed_file: senders[id]?.["nats_nkey_seed_file"] }),
  };
};
