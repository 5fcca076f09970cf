/**
 * The receiver's own users on its embedded nats-server, one nkey each, made on first start and kept
 * in the data directory readable by its owner only:
 * - `service` hears hellos and session requests and answers them; it may publish nowhere but the
 *   senders' inboxes, so no request can make it act on JetStream or the system account;
 * - `store` does all JetStream work (ownership KV, object store) and receives nothing from senders.
 * Admin commands on the same machine (`tsync owners`) authenticate as `store`.
 */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createUser, fromSeed } from "@nats-io/nkeys";

export type ReceiverRole = "service" | "store";

export interface ReceiverIdentity {
  readonly role: ReceiverRole;
  readonly publicKey: string;
  readonly seedFile: string;
}

export const receiverKeysDir = (dataDir: string): string => join(dataDir, ".tsync", "keys");

const readIdentity = async (role: ReceiverRole, seedFile: string): Promise<ReceiverIdentity> => {
  const seed = (await readFile(seedFile, "utf8")).trim();
  return { role, publicKey: fromSeed(new TextEncoder().encode(seed)).getPublicKey(), seedFile };
};

/** The identity of `role`, made on first use. */
export const receiverIdentity = async (dataDir: string, role: ReceiverRole): Promise<ReceiverIdentity> => {
  const dir = receiverKeysDir(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const seedFile = join(dir, `${role}.nk`);
  try {
    return await readIdentity(role, seedFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT")
      throw new Error(`cannot read the receiver's ${role} key ${seedFile}: ${e instanceof Error ? e.message : String(e)}`);
  }
  // `wx`: two receivers starting on one data directory must not each write a different key.
  await writeFile(seedFile, new TextDecoder().decode(createUser().getSeed()) + "\n", { mode: 0o600, flag: "wx" }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  });
  return readIdentity(role, seedFile);
};

/** Only an existing identity (admin commands must not mint keys the running server does not know). */
export const existingReceiverIdentity = async (dataDir: string, role: ReceiverRole): Promise<ReceiverIdentity | undefined> =>
  readIdentity(role, join(receiverKeysDir(dataDir), `${role}.nk`)).catch(() => undefined);
