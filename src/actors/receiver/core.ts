// What the session's actors do to storage: place, verify, load and delete files, each answered with a wire reply.
import { runEffect } from "../runtime.js";
import type { FileRef, Load, PartKind } from "../../protocol/messages.js";
import { Code, reply, type CodeValue, type Reply } from "../../protocol/status.js";
import { senderInboxPrefix, sessionPrefix } from "../../protocol/subjects.js";
import { isAllowed, type IpWhiteList } from "../../config/ipWhiteList.js";
import { formatIpWhiteList } from "../../config/ipWhiteList.js";
import type { CarriedPart, StagedPart, Storage, TsFileFacts } from "../../plugins/storage.js";
import { senderConnectionName } from "../natsConnect.js";
import type { AddressBook, InboxOwner } from "./addressOf.js";
import type { Catalog } from "./catalog.js";
import type { Journal } from "./journal.js";
import type { Owner, OwnershipRegistry } from "./ownership.js";
import type { ReadyPart, Staging } from "./staging.js";

/** A put's part, checked in memory (digest, TsFile format) and not yet on disk. */
export type Carried = CarriedPart & { readonly facts: unknown };

/** A part here to be loaded: waiting in staging, or carried in a put's message. */
type Received = ReadyPart | Carried;

export type TsFileCheck = { readonly ok: true; readonly facts: TsFileFacts } | { readonly ok: false; readonly reason: string };

export interface ReceiverStats {
  sessionsOpened: number;
  refused: number;
  rejected: number;
  bytes: number;
  loads: number;
  deleted: number;
  digestMismatches: number;
  conflicts: number;
  /** Requests whose reply subject was not the asking sender's own inbox: never answered. */
  droppedReplies: number;
}

export interface CoreSettings {
  readonly group: string;
  readonly instance: string;
  readonly enabled: boolean;
  readonly whiteList: IpWhiteList;
  /** Asks the NATS server which connection (and so which address) sent a request. */
  readonly addresses: AddressBook | undefined;
  readonly maxSessions: number;
  readonly maxChunkBytes: number;
  readonly maxFileBytes: number;
  readonly idleTimeoutMs: number;
  /**
   * With enrollment (the embedded server's default): the public nkey a sender id is enrolled with,
   * or undefined for an id nobody enrolled. Absent when the server's own auth is all there is.
   */
  readonly enrolledKey?: (senderId: string) => string | undefined;
  /** admit_leaf_nodes: hellos through a hub's leaf node connection are admitted (docs/scale-out.md). */
  readonly admitLeafNodes?: boolean;
}

/** What every session of one receiver shares: storage, journal, staging, ownership, admission rules. */
export class ReceiverCore {
  readonly stats: ReceiverStats = {
    sessionsOpened: 0,
    refused: 0,
    rejected: 0,
    bytes: 0,
    loads: 0,
    deleted: 0,
    digestMismatches: 0,
    conflicts: 0,
    droppedReplies: 0,
  };
  activeSessions = 0;

  constructor(
    readonly settings: CoreSettings,
    readonly journal: Journal,
    readonly staging: Staging,
    readonly storage: Storage,
    private readonly owners: OwnershipRegistry,
    readonly validateTsFile: (file: string | Uint8Array) => Promise<TsFileCheck>,
    readonly log: (line: string) => void,
    readonly inspectOption: (sessionId: string) => { inspect?: (e: unknown) => void },
    readonly catalog: Catalog,
  ) {}

  get maxChunkBytes(): number {
    return this.settings.maxChunkBytes;
  }

  get maxFileBytes(): number {
    return this.settings.maxFileBytes;
  }

  sessionPrefix(senderId: string, sessionId: string): string {
    return sessionPrefix(this.settings.group, this.settings.instance, senderId, sessionId);
  }

  async claim(sg: string, senderId: string): Promise<Owner> {
    const owner = await this.owners.claim(sg, senderId);
    if (owner.senderId !== senderId) this.stats.conflicts++;
    return owner;
  }

  /** Who owns `sg` now, asked fresh; never claims. */
  ownerOf(sg: string): Promise<Owner | undefined> {
    return this.owners.owner(sg);
  }

  /** The answer to a sender whose storage group belongs to another. */
  groupConflict(owner: Owner): Reply {
    this.stats.conflicts++;
    return reply(
      Code.conflict,
      `storage group ${owner.sg} belongs to sender ${owner.senderId} (since ${owner.since}); this sender's files of ${owner.sg} are refused`,
      {
        owner: owner.senderId,
      },
    );
  }

  private fileConflict(ref: FileRef, loader: string, doing: "overwrite" | "delete"): Reply {
    this.stats.conflicts++;
    const file = `${ref.sg}/${ref.vg}/${ref.tp}/${ref.name}`;
    return reply(
      Code.conflict,
      `${file} was loaded by sender ${loader}; a sender may ${doing} only files it loaded itself or files handed to it with the storage group (tsync owners release --transfer-files)`,
      { file, loader },
    );
  }

  /** A sender other than `sender` whose copy of `ref` is in storage and was not handed to it. */
  private foreignLoader(sender: string, ref: FileRef, inherits: ReadonlyArray<string>): string | undefined {
    return this.journal.loadersOf(ref).find((l) => l !== sender && !inherits.includes(l));
  }

  /**
   * Whether `sender` may put its `ref` where another sender's copy lies (storage places by name).
   * Only asks the registry when there is such a copy: the common case costs a map lookup. An
   * unowned group answers for its next owner, as a load would claim it.
   */
  async overwriteConflict(sender: string, ref: FileRef): Promise<Reply | undefined> {
    if (this.journal.loadersOf(ref).every((l) => l === sender)) return undefined;
    const { owner, transfer } = await this.owners.state(ref.sg);
    if (owner && owner.senderId !== sender) return this.groupConflict(owner);
    const held = this.foreignLoader(sender, ref, owner?.inheritsFrom ?? transfer?.filesOf ?? []);
    return held === undefined ? undefined : this.fileConflict(ref, held, "overwrite");
  }

  /** Drops `loader`'s copy of `ref`: from storage unless `keepBytes` (they share the path with the new copy), then its records. */
  private async dropCopy(loader: string, ref: FileRef, keepBytes = false): Promise<boolean> {
    const existed = keepBytes ? false : await runEffect(this.storage.remove(loader, ref));
    await this.journal.recordDeleted(loader, ref);
    await this.catalog.deleted(loader, ref);
    return existed;
  }

  /**
   * Deletes `ref` for `sender`: only a file it loaded itself, or one handed to it with the group,
   * and only while it owns the group (asked fresh, so a released group's former owner cannot).
   * Claims nothing. A file nobody loaded is answered ok "was not there", so an honest sender whose
   * copy is already gone forgets it; nothing is written for it.
   */
  async remove(sender: string, ref: FileRef): Promise<Reply> {
    const loaders = this.journal.loadersOf(ref);
    if (loaders.length === 0) return reply(Code.ok, "was not there");
    const owner = await this.owners.owner(ref.sg);
    if (owner && owner.senderId !== sender) return this.groupConflict(owner);
    if (!owner) {
      const theirs = loaders.find((l) => l !== sender);
      if (theirs !== undefined) return this.fileConflict(ref, theirs, "delete");
      this.stats.conflicts++;
      return reply(
        Code.conflict,
        `storage group ${ref.sg} has no owner (it was released); its files stay as they are until a sender loads a file of ${ref.sg} and so owns it`,
      );
    }
    const held = this.foreignLoader(sender, ref, owner.inheritsFrom);
    if (held !== undefined) return this.fileConflict(ref, held, "delete");
    let existed = false;
    for (const loader of loaders) existed = (await this.dropCopy(loader, ref)) || existed;
    this.stats.deleted++;
    return reply(Code.ok, existed ? "deleted" : "was not there");
  }

  /** Admitted by `admit` but not yet registered by the receiver; they count against max_sessions. */
  private admitting = 0;

  /** The receiver registered (or dropped) a session that `admit` let in. */
  settleAdmission(): void {
    this.admitting = Math.max(0, this.admitting - 1);
  }

  /**
   * is_sync_enable; then the connection that owns the hello's reply inbox, as the NATS server lists
   * it: its address against ip_white_list, its name against the claimed sender id (so a hello
   * cannot borrow another client's inbox, address or identity); then capacity. `replacing` counts
   * this sender's live sessions, which the new one supersedes.
   */
  async admit(helloReplySubject: string, senderId: string, replacing: () => number = () => 0): Promise<Reply> {
    const refuse = (code: CodeValue, message: string): Reply => {
      this.stats.refused++;
      return reply(code, message);
    };
    if (!this.settings.enabled) return refuse(Code.disabled, "sync is disabled on this receiver (is_sync_enable=false)");
    const addresses = this.settings.addresses;
    if (!addresses) return refuse(Code.addressNotAllowed, "the receiver cannot establish sender addresses: set nats_monitor_url");
    const enrolledKey = this.settings.enrolledKey;
    const nkey = enrolledKey?.(senderId);
    if (enrolledKey !== undefined && nkey === undefined)
      return refuse(Code.unauthorized, `sender ${senderId} is not enrolled with this receiver (tsync senders add ${senderId})`);
    let owner: InboxOwner;
    try {
      owner = await addresses.ownerOf(helloReplySubject, { user: nkey, name: senderConnectionName(senderId) });
    } catch (e) {
      return refuse(
        Code.internal,
        `cannot ask ${addresses.source} for the sender's address: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    if (owner.kind === "none")
      return refuse(
        Code.addressNotAllowed,
        nkey !== undefined
          ? `the NATS server knows no connection authenticated as sender ${senderId} that holds this request's reply inbox`
          : `the NATS server knows no connection named ${senderConnectionName(senderId)} (as sender ${senderId}'s must be) that holds this request's reply inbox`,
      );
    if (owner.kind === "ambiguous")
      return refuse(
        Code.unauthorized,
        `${owner.conns.length} connections subscribe this request's reply inbox; refusing a hello whose answer others would read`,
      );
    const conn = owner.conn;
    if (nkey !== undefined && conn.user !== nkey)
      return refuse(Code.unauthorized, `the connection that asked is not authenticated with sender ${senderId}'s enrolled key`);
    if (!isAllowed(this.settings.whiteList, conn.ip))
      return refuse(
        Code.addressNotAllowed,
        `sender address ${conn.ip} is not in ip_white_list (${formatIpWhiteList(this.settings.whiteList) || "empty: nobody"})`,
      );
    if (conn.leaf) {
      // Behind a leaf node the hub sees the leaf's connection, not the sender's: the identity rests
      // on the hub's permissions for that leaf's user (only its own senders' subjects), which the
      // operator vouches for with admit_leaf_nodes.
      if (!this.settings.admitLeafNodes)
        return refuse(
          Code.unauthorized,
          `sender ${senderId} asked through the leaf node connection from ${conn.ip}: senders behind leaf nodes are not admitted (set admit_leaf_nodes=true once each leaf's user on the hub is confined to its senders' subjects, docs/scale-out.md)`,
        );
      const shadow = conn.alsoHeardBy ?? [];
      if (shadow.length > 0)
        return refuse(
          Code.unauthorized,
          `the leaf node connection from ${conn.ip} also subscribes ${shadow.join(", ")}, which hears sender ${senderId}'s replies: a client of that leaf server could read them; confine each of its clients to its own inbox (${senderInboxPrefix(senderId)}.>)`,
        );
    } else if (conn.name !== senderConnectionName(senderId))
      return refuse(
        Code.unauthorized,
        `the connection that asked (${conn.ip}, named ${JSON.stringify(conn.name ?? "")}) is not sender ${senderId}'s: its connection must be named ${senderConnectionName(senderId)}`,
      );
    if (this.activeSessions + this.admitting - replacing() >= this.settings.maxSessions)
      return refuse(Code.busy, `receiver is at max_sessions (${this.settings.maxSessions}); try later`);
    this.admitting++;
    return reply(Code.ok, `welcome from ${conn.ip}`, { address: conn.ip, ...(conn.user === undefined ? {} : { user: conn.user }) });
  }

  /**
   * Recovery of a crash between placing a part and journaling it: the storage already took the
   * staged file (its `.ready.meta` is left), so the storage is asked whether it holds that digest;
   * if so the load is journaled without loading again. Answers the digest when the part is loaded.
   */
  async recoverPlaced(
    sender: string,
    ref: FileRef,
    kind: PartKind,
    size: number,
    sha256?: string,
  ): Promise<{ sha256: string } | undefined> {
    const verified = await this.placedBefore(sender, ref, kind, size, sha256);
    if (!verified) return undefined;
    await this.noteLoaded(sender, ref, kind, verified.size, verified.sha256, verified.facts as TsFileFacts | undefined);
    return { sha256: verified.sha256 };
  }

  /**
   * The staged part the storage already holds at `ref`, when it was this sender's to place: with
   * another sender's copy journaled there, equal bytes are theirs, not a placement of this one.
   */
  private async placedBefore(sender: string, ref: FileRef, kind: PartKind, size: number, sha256: string | undefined) {
    if (this.journal.loadersOf(ref).some((l) => l !== sender)) return undefined;
    const verified = await this.staging.verified(sender, ref, kind);
    if (!verified || verified.size !== size || (sha256 !== undefined && verified.sha256 !== sha256)) return undefined;
    return (await runEffect(this.storage.has(ref, kind, verified.sha256))) ? verified : undefined;
  }

  /** Catalog first, then the journal: a crash between them repeats an (idempotent) catalog line, never loses one. */
  private async noteLoaded(
    sender: string,
    ref: FileRef,
    kind: PartKind,
    size: number,
    sha256: string,
    facts: TsFileFacts | undefined,
  ): Promise<void> {
    if (kind === "tsfile" && facts) {
      await this.catalog.loaded({
        sender,
        ref: { sg: ref.sg, vg: ref.vg, tp: ref.tp, name: ref.name },
        devices: facts.devices,
        version: facts.version,
        loadedAt: new Date().toISOString(),
      });
    }
    await this.journal.recordLoaded({ sender, ref, kind, size, sha256 });
    await this.staging.discard(sender, ref, kind);
  }

  /**
   * Hands parts to the storage: carried bytes straight to a storage that takes them, else through
   * staging (written and synced there first) like parts that came in chunks.
   */
  private async place(
    sender: string,
    ref: FileRef,
    parts: ReadonlyArray<Received & { readonly kind: PartKind }>,
    facts: TsFileFacts | undefined,
  ): Promise<void> {
    const carried = parts.filter((p): p is Carried => "bytes" in p);
    if (this.storage.loadBytes && carried.length === parts.length) {
      await runEffect(this.storage.loadBytes({ senderId: sender, ref, parts: carried, facts }));
      return;
    }
    const staged: StagedPart[] = [];
    for (const p of parts) {
      if (!("bytes" in p)) {
        staged.push({ kind: p.kind, path: p.path, size: p.size, sha256: p.sha256 });
        continue;
      }
      const r = await this.staging.whole(sender, ref, p.kind, p.bytes, p.sha256, async () => ({ ok: true, facts: p.facts }));
      if (!r.ok) throw new Error(`${ref.name} (${p.kind}) could not be staged: ${r.reason}`);
      staged.push({ kind: p.kind, path: r.ready.path, size: p.size, sha256: p.sha256 });
    }
    await runEffect(this.storage.load({ senderId: sender, ref, parts: staged, facts }));
  }

  /**
   * Loads the parts of one TsFile that are not yet loaded. A part already journaled is skipped; a
   * part the storage already holds with the same digest (a crash between placing it and journaling
   * it) is journaled without loading it again. `carried`: parts of a put, verified in memory and not
   * yet on disk; they count as received.
   */
  async load(sender: string, load: Load, carried: ReadonlyMap<PartKind, Carried> = new Map()): Promise<Reply> {
    const ref: FileRef = { sg: load.sg, vg: load.vg, tp: load.tp, name: load.name };
    // Fresh from the registry: a group released and claimed by another mid-session is not written.
    const before = await this.owners.state(load.sg);
    if (before.owner && before.owner.senderId !== sender) return this.groupConflict(before.owner);
    const fresh = load.parts.filter((p) => this.journal.find(sender, load, p.kind)?.sha256 !== p.sha256);
    // Each staged part is looked up once: the checks below and the load itself share the answer.
    const known = new Map<PartKind, Received | undefined>(carried);
    const readyOf = async (kind: PartKind, sha256: string) => {
      const here = known.has(kind) ? known.get(kind) : await this.staging.ready(sender, load, kind, sha256);
      known.set(kind, here);
      return here?.sha256 === sha256 ? here : undefined;
    };
    if (fresh.length > 0) {
      // Only a load that will place a file claims the group, so everything it needs is checked
      // first: every part is here, and no other sender's copy lies where it goes.
      for (const p of fresh) {
        const here = (await readyOf(p.kind, p.sha256)) ?? (await this.placedBefore(sender, load, p.kind, p.size, p.sha256));
        if (!here)
          return reply(Code.notReady, `${load.name} (${p.kind}) was not received with digest ${p.sha256.slice(0, 12)}…; send it first`);
      }
      const heldBefore = this.foreignLoader(sender, ref, before.owner?.inheritsFrom ?? before.transfer?.filesOf ?? []);
      if (heldBefore !== undefined) return this.fileConflict(ref, heldBefore, "overwrite");
      const owner = before.owner ?? (await this.owners.claim(load.sg, sender));
      if (owner.senderId !== sender) return this.groupConflict(owner);
      // The claim may have found a different inheritance than the read before it (a race with a release).
      const held = this.foreignLoader(sender, ref, owner.inheritsFrom);
      if (held !== undefined) return this.fileConflict(ref, held, "overwrite");
      // Inherited copies go before the new one is placed: they share its path, so removing them
      // afterwards would remove it. Where this sender has parts too, the load overwrites in place.
      const mineToo = this.journal.loadersOf(ref).includes(sender);
      for (const previous of this.journal.loadersOf(ref)) if (previous !== sender) await this.dropCopy(previous, ref, mineToo);
    }
    const toLoad: (Received & { readonly kind: PartKind })[] = [];
    let facts: TsFileFacts | undefined;
    let recovered = 0;
    for (const part of load.parts) {
      const done = this.journal.find(sender, load, part.kind);
      if (done && done.sha256 === part.sha256) {
        await this.staging.discard(sender, load, part.kind);
        continue;
      }
      const ready = await readyOf(part.kind, part.sha256);
      if (!ready) {
        if (await this.recoverPlaced(sender, load, part.kind, part.size, part.sha256)) {
          recovered++;
          continue;
        }
        return reply(Code.notReady, `${load.name} (${part.kind}) was not received with digest ${part.sha256.slice(0, 12)}…; send it first`);
      }
      if (part.kind === "tsfile") facts = ready.facts as TsFileFacts | undefined;
      if (await runEffect(this.storage.has(load, part.kind, part.sha256))) {
        await this.noteLoaded(sender, load, part.kind, ready.size, ready.sha256, ready.facts as TsFileFacts | undefined);
        recovered++;
        continue;
      }
      toLoad.push({ ...ready, kind: part.kind });
    }
    if (toLoad.length === 0) return reply(Code.have, recovered > 0 ? "already loaded (recovered)" : "already loaded");
    await this.place(sender, load, toLoad, facts);
    // Catalog first (idempotent), then one journal append and one fsync for the whole file.
    if (facts && toLoad.some((p) => p.kind === "tsfile")) {
      await this.catalog.loaded({
        sender,
        ref: { sg: load.sg, vg: load.vg, tp: load.tp, name: load.name },
        devices: facts.devices,
        version: facts.version,
        loadedAt: new Date().toISOString(),
      });
    }
    await this.journal.recordLoadedAll(
      toLoad.map((p) => ({
        sender,
        ref: { sg: load.sg, vg: load.vg, tp: load.tp, name: load.name },
        kind: p.kind,
        size: p.size,
        sha256: p.sha256,
      })),
    );
    for (const p of toLoad) if (!("bytes" in p)) await this.staging.discard(sender, load, p.kind);
    this.stats.loads++;
    return reply(Code.ok, `loaded ${toLoad.map((p) => p.kind).join(", ")}`);
  }
}
