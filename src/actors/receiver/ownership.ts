// Storage-group ownership in a JetStream KV bucket: which sender owns a group, claims, releases and transfers.
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

export interface Owner {
  readonly sg: string;
  readonly senderId: string;
  readonly since: string;
  /**
   * Senders whose files in `sg` this owner may overwrite and delete, handed over by
   * `tsync owners release --transfer-files`. Records written before transfers existed have none.
   */
  readonly inheritsFrom: ReadonlyArray<string>;
}

/**
 * A group released with `--transfer-files` and not claimed since: it has no owner, and whoever
 * claims it next inherits the files of `filesOf`. It takes the owner's key, so that claim is an
 * `update` at this record's revision, which exactly one claimant on any receiver instance wins.
 */
export interface PendingTransfer {
  readonly sg: string;
  readonly releasedAt: string;
  readonly filesOf: ReadonlyArray<string>;
}

export type ReleaseOutcome =
  | { readonly kind: "released"; readonly owner: Owner; readonly transfer: PendingTransfer | undefined }
  | { readonly kind: "transferCancelled"; readonly transfer: PendingTransfer }
  | { readonly kind: "transferPending"; readonly transfer: PendingTransfer }
  | { readonly kind: "none" };

/**
 * The registry did not answer: JetStream is electing a leader, cut off from its quorum, or slow.
 * Written for the sender (names no local detail), so a round retries knowing why.
 */
export class RegistryUnavailable extends Error {
  override readonly name = "RegistryUnavailable";
}

/** Errors of the NATS client: the registry's JetStream did not answer as asked. */
const natsClientError =
  /^(JetStream\w*|TimeoutError|NoResponders\w*|RequestError|ClosedConnectionError|DrainingConnectionError|ConnectionError)$/;

/** A NATS client error as the RegistryUnavailable it means; any other error as it is. */
export const asRegistryFailure = (e: unknown): unknown =>
  e instanceof Error && natsClientError.test(e.name)
    ? new RegistryUnavailable(`the storage-group ownership registry cannot answer now (${e.message.slice(0, 120)}); try again`, {
        cause: e,
      })
    : e;

export const ownersBucket = (group: string): string => `tsync-owners-${group}`;

/**
 * KV keys allow `[-/_=.a-zA-Z0-9]` in dot-separated tokens; a group name may hold other letters
 * and dots anywhere, so anything else, and a dot that would start, end or double a token, is
 * escaped as `=XX` (UTF-8 hex). `=` never appears unescaped, so the mapping is one-to-one.
 */
export const ownerKey = (sg: string): string => {
  const bytes = [...new TextEncoder().encode(sg)];
  return bytes
    .map((b, i) => {
      const c = String.fromCharCode(b);
      const safeDot = c === "." && i > 0 && i < bytes.length - 1 && bytes[i - 1] !== 0x2e;
      return /[-_a-zA-Z0-9]/.test(c) || safeDot ? c : `=${b.toString(16).padStart(2, "0")}`;
    })
    .join("");
};

const isStrings = (v: unknown): v is ReadonlyArray<string> => Array.isArray(v) && v.every((x) => typeof x === "string");

const asOwner = (v: unknown): Owner | undefined => {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o["sg"] !== "string" || typeof o["senderId"] !== "string" || typeof o["since"] !== "string") return undefined;
  const inherits = o["inheritsFrom"] ?? [];
  if (!isStrings(inherits)) return undefined;
  return { sg: o["sg"], senderId: o["senderId"], since: o["since"], inheritsFrom: [...inherits] };
};

const asTransfer = (v: unknown): PendingTransfer | undefined => {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o["sg"] !== "string" || "senderId" in o || typeof o["releasedAt"] !== "string" || !isStrings(o["filesOf"])) return undefined;
  return { sg: o["sg"], releasedAt: o["releasedAt"], filesOf: [...o["filesOf"]] };
};

type Stored = { readonly owner: Owner; readonly transfer?: undefined } | { readonly owner?: undefined; readonly transfer: PendingTransfer };

/**
 * Sets a stream's number of copies when it differs (JetStream moves the data; a single server
 * refuses more than one), and, with `leaderReads`, turns off direct gets.
 */
export const ensureStream = async (
  nc: NatsConnection,
  stream: string,
  want: { readonly replicas: number; readonly leaderReads?: boolean },
): Promise<void> => {
  const jsm = await jetstreamManager(nc);
  const { config } = await jsm.streams.info(stream);
  const replicas = (config.num_replicas ?? 1) !== want.replicas;
  const direct = want.leaderReads === true && config.allow_direct === true;
  if (replicas || direct)
    await jsm.streams.update(stream, { num_replicas: want.replicas, ...(want.leaderReads ? { allow_direct: false } : {}) });
};

const bySg = (a: { sg: string }, b: { sg: string }) => (a.sg < b.sg ? -1 : a.sg > b.sg ? 1 : 0);

/**
 * Storage group → the sender that first loaded a file of it. Lives in JetStream KV so it survives
 * restarts and every receiver instance of the group agrees: every write is conditional on the
 * revision it read (`create` for a fresh key), so of racing writers exactly one succeeds.
 */
export class OwnershipRegistry {
  private constructor(private readonly kv: KV) {}

  /**
   * Opens the group's bucket, creating it when missing. With `replicas` (the receiver's own key),
   * a bucket kept with another number of copies is changed to it, so a group that grew from one
   * server onto a cluster gets its registry replicated; admin commands pass none and change nothing.
   */
  static async open(nc: NatsConnection, group: string, replicas?: number): Promise<OwnershipRegistry> {
    // Every read goes to the stream's leader, never a direct get: any copy answers a direct get,
    // and one that lags (or, on nats-server 2.9, one that kept a write it took while cut off from
    // the quorum) answers a record the leader does not hold, e.g. a released group's old owner.
    const kv = await new Kvm(nc).create(ownersBucket(group), {
      history: 1,
      allow_direct: false,
      ...(replicas === undefined ? {} : { replicas }),
    });
    if (replicas !== undefined) await ensureStream(nc, `KV_${ownersBucket(group)}`, { replicas, leaderReads: true });
    return new OwnershipRegistry(kv);
  }

  /** The record of `sg` and the revision to write over it (0: the key never existed). */
  private async read(sg: string): Promise<{ readonly stored: Stored | undefined; readonly revision: number }> {
    const e = await this.kv.get(ownerKey(sg)).catch((x: unknown) => Promise.reject(asRegistryFailure(x)));
    if (!e) return { stored: undefined, revision: 0 };
    if (e.operation !== "PUT" || e.length === 0) return { stored: undefined, revision: e.revision };
    const v: unknown = e.json();
    const owner = asOwner(v);
    if (owner) return { stored: { owner }, revision: e.revision };
    const transfer = asTransfer(v);
    if (transfer) return { stored: { transfer }, revision: e.revision };
    throw new Error(`the ownership entry of ${sg} is not an owner record: ${e.string().slice(0, 200)}`);
  }

  private async write(sg: string, revision: number, value: Owner | PendingTransfer): Promise<void> {
    const data = JSON.stringify(value);
    if (revision === 0) await this.kv.create(ownerKey(sg), data);
    else await this.kv.update(ownerKey(sg), data, revision);
  }

  async owner(sg: string): Promise<Owner | undefined> {
    return (await this.read(sg)).stored?.owner;
  }

  /** Who owns `sg`, or, when nobody does, whose files its next owner will inherit. Never writes. */
  async state(sg: string): Promise<{ readonly owner: Owner | undefined; readonly transfer: PendingTransfer | undefined }> {
    const { stored } = await this.read(sg);
    return { owner: stored?.owner, transfer: stored?.transfer };
  }

  /**
   * Claims `sg` for `senderId` unless someone has it; answers who owns it now. Reads first, so an
   * owner asking again costs one read. A pending transfer becomes the new owner's inheritance.
   */
  async claim(sg: string, senderId: string): Promise<Owner> {
    for (let attempt = 0; ; attempt++) {
      const { stored, revision } = await this.read(sg);
      if (stored?.owner) return stored.owner;
      const inheritsFrom = (stored?.transfer?.filesOf ?? []).filter((s) => s !== senderId);
      const mine: Owner = { sg, senderId, since: new Date().toISOString(), inheritsFrom };
      try {
        await this.write(sg, revision, mine);
        return mine;
      } catch (e) {
        // Another claimant won between our read and write (or a release raced us): read again.
        if (attempt === 4) throw asRegistryFailure(e);
      }
    }
  }

  /** Owner records and pending transfers, by group. */
  async records(): Promise<{ readonly owners: ReadonlyArray<Owner>; readonly transfers: ReadonlyArray<PendingTransfer> }> {
    const owners: Owner[] = [];
    const transfers: PendingTransfer[] = [];
    for await (const k of await this.kv.keys()) {
      const e = await this.kv.get(k);
      if (!e || e.operation !== "PUT" || e.length === 0) continue;
      const v: unknown = e.json();
      const o = asOwner(v);
      if (o) owners.push(o);
      const t = o ? undefined : asTransfer(v);
      if (t) transfers.push(t);
    }
    return { owners: owners.sort(bySg), transfers: transfers.sort(bySg) };
  }

  async list(): Promise<ReadonlyArray<Owner>> {
    return (await this.records()).owners;
  }

  /**
   * Frees a group; the next sender to load a file of it becomes its owner. Files already loaded
   * stay their loaders' unless `transferFiles`: then the next owner inherits them (and what this
   * owner had inherited). Without `transferFiles`, a pending transfer is cancelled.
   */
  async releaseGroup(sg: string, opts: { readonly transferFiles?: boolean } = {}): Promise<ReleaseOutcome> {
    for (let attempt = 0; ; attempt++) {
      const { stored, revision } = await this.read(sg);
      try {
        if (!stored) return { kind: "none" };
        if (stored.transfer) {
          if (opts.transferFiles) return { kind: "transferPending", transfer: stored.transfer };
          await this.kv.purge(ownerKey(sg), { previousSeq: revision });
          return { kind: "transferCancelled", transfer: stored.transfer };
        }
        const owner = stored.owner;
        if (!opts.transferFiles) {
          await this.kv.purge(ownerKey(sg), { previousSeq: revision });
          return { kind: "released", owner, transfer: undefined };
        }
        const transfer: PendingTransfer = {
          sg,
          releasedAt: new Date().toISOString(),
          filesOf: [...new Set([owner.senderId, ...owner.inheritsFrom])],
        };
        await this.write(sg, revision, transfer);
        return { kind: "released", owner, transfer };
      } catch (e) {
        // The record changed between our read and write (a claim on another instance): decide again.
        if (attempt === 4) throw e;
      }
    }
  }

  /** `releaseGroup`, answering whether anything was released or cancelled. */
  async release(sg: string, opts: { readonly transferFiles?: boolean } = {}): Promise<boolean> {
    const r = await this.releaseGroup(sg, opts);
    return r.kind === "released" || r.kind === "transferCancelled";
  }
}
