/**
 * The senders enrolled with a receiver: id → the public half of the nkey its edge box holds. The
 * embedded nats-server's authorization block is generated from this file, so enrolling or removing
 * a sender is a change of this file (the running receiver reloads the server when it changes).
 */
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { dirname, join } from "node:path";
import { createUser, fromPublic } from "@nats-io/nkeys";
import { isToken } from "../../protocol/names.js";
import { writeFileAtomic } from "../../files/durableFile.js";

export interface EnrolledSender {
  readonly id: string;
  /** Public user nkey (`U...`); the seed lives only on the edge box. */
  readonly nkey: string;
  readonly added: string;
}

/** How often a running receiver looks at the registry for enrollments and removals. */
export const registryPollMs = 1_000;

export const senderRegistryPath = (dataDir: string): string => join(dataDir, ".tsync", "senders.json");

export class RegistryError extends Error {}

const isEnrolled = (v: unknown): v is EnrolledSender => {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return isToken(o["id"]) && typeof o["nkey"] === "string" && typeof o["added"] === "string";
};

const validKey = (nkey: string): boolean => {
  try {
    return nkey.startsWith("U") && fromPublic(nkey).getPublicKey() === nkey;
  } catch {
    return false;
  }
};

/**
 * Reads the registry. A missing file is an empty fleet; anything unreadable or malformed is an
 * error, never "no senders": treating a damaged registry as empty would lock the fleet out silently
 * on the next reload, and the operator must see why.
 */
export const readSenderRegistry = async (dataDir: string): Promise<ReadonlyArray<EnrolledSender>> => {
  const path = senderRegistryPath(dataDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new RegistryError(`cannot read the sender registry ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RegistryError(`the sender registry ${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const list = (parsed as { senders?: unknown } | null)?.senders;
  if (!Array.isArray(list)) throw new RegistryError(`the sender registry ${path} has no "senders" list`);
  for (const s of list) {
    if (!isEnrolled(s) || !validKey(s.nkey))
      throw new RegistryError(`the sender registry ${path} has a bad entry: ${JSON.stringify(s).slice(0, 200)}`);
  }
  return list as EnrolledSender[];
};

const writeRegistry = async (dataDir: string, senders: ReadonlyArray<EnrolledSender>): Promise<void> => {
  await mkdir(dirname(senderRegistryPath(dataDir)), { recursive: true });
  await writeFileAtomic(senderRegistryPath(dataDir), JSON.stringify({ version: 1, senders }, null, 2) + "\n");
};

/** A lock older than this was left by a command that died; it is broken. */
const staleLockMs = 30_000;

/** Two `tsync senders` commands at once must not each rewrite the registry from the same old copy. */
const withRegistryLock = async <A>(dataDir: string, use: () => Promise<A>): Promise<A> => {
  const lock = `${senderRegistryPath(dataDir)}.lock`;
  await mkdir(dirname(lock), { recursive: true });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await (await open(lock, "wx")).close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const held = await stat(lock).catch(() => undefined);
      if (held && Date.now() - held.mtimeMs > staleLockMs) await rm(lock, { force: true });
      else if (Date.now() > deadline) throw new RegistryError(`the sender registry is locked by another command (${lock}); try again`);
      else await sleep(50);
    }
  }
  try {
    return await use();
  } finally {
    await rm(lock, { force: true });
  }
};

/**
 * Enrolls `id` with a new user nkey. The seed is handed to `keep` (which writes the edge box's
 * credential file) before the registry names the key, so a failure there enrolls nothing; the
 * receiver never stores the seed.
 */
export const enrollSender = async (dataDir: string, id: string, keep: (seed: string) => Promise<void>): Promise<EnrolledSender> => {
  if (!isToken(id)) throw new RegistryError(`sender id ${JSON.stringify(id)} must be 1 to 64 letters, digits, '_' or '-'`);
  return withRegistryLock(dataDir, async () => {
    const senders = await readSenderRegistry(dataDir);
    if (senders.some((s) => s.id === id)) throw new RegistryError(`sender ${id} is already enrolled; remove it first to issue a new key`);
    const pair = createUser();
    const sender: EnrolledSender = { id, nkey: pair.getPublicKey(), added: new Date().toISOString() };
    await keep(new TextDecoder().decode(pair.getSeed()));
    await writeRegistry(dataDir, [...senders, sender]);
    return sender;
  });
};

/** Removes `id`; answers whether it was enrolled. */
export const removeSender = (dataDir: string, id: string): Promise<boolean> =>
  withRegistryLock(dataDir, async () => {
    const senders = await readSenderRegistry(dataDir);
    const rest = senders.filter((s) => s.id !== id);
    if (rest.length === senders.length) return false;
    await writeRegistry(dataDir, rest);
    return true;
  });
