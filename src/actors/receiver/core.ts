import { Effect } from "effect";
import type { Reply } from "../../machines/receiverSession.js";
import type { FileRef, Load, PartKind } from "../../protocol/messages.js";
import { Code } from "../../protocol/status.js";
import { sessionPrefix } from "../../protocol/subjects.js";
import { isAllowed, type IpWhiteList } from "../../config/ipWhiteList.js";
import { formatIpWhiteList } from "../../config/ipWhiteList.js";
import type { StagedPart, Storage, TsFileFacts } from "../../plugins/storage.js";
import { senderConnectionName } from "../natsConnect.js";
import type { AddressBook, InboxOwner } from "./addressOf.js";
import type { Catalog } from "./catalog.js";
import type { Journal } from "./journal.js";
import type { Owner, OwnershipRegistry } from "./ownership.js";
import type { Staging } from "./staging.js";

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
}

/** What every session of one receiver shares: storage, journal, staging, ownership, admission rules. */
export class ReceiverCore {
  readonly stats: ReceiverStats = { sessionsOpened: 0, refused: 0, rejected: 0, bytes: 0, loads: 0, deleted: 0, digestMismatches: 0, conflicts: 0 };
  activeSessions = 0;

  constructor(
    readonly settings: CoreSettings,
    readonly journal: Journal,
    readonly staging: Staging,
    readonly storage: Storage,
    private readonly owners: OwnershipRegistry,
    readonly validateTsFile: (path: string) => Promise<TsFileCheck>,
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
    const refuse = (code: number, message: string): Reply => {
      this.stats.refused++;
      return { code, message };
    };
    if (!this.settings.enabled) return refuse(Code.disabled, "sync is disabled on this receiver (is_sync_enable=false)");
    const addresses = this.settings.addresses;
    if (!addresses) return refuse(Code.addressNotAllowed, "the receiver cannot establish sender addresses: set nats_monitor_url");
    let owner: InboxOwner;
    try {
      owner = await addresses.ownerOf(helloReplySubject);
    } catch (e) {
      return refuse(Code.internal, `cannot ask ${addresses.source} for the sender's address: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (owner.kind === "none") return refuse(Code.addressNotAllowed, "the NATS server knows no connection for this request's reply subject");
    if (owner.kind === "ambiguous")
      return refuse(Code.unauthorized, `${owner.conns.length} connections subscribe this request's reply inbox; refusing a hello whose answer others would read`);
    const conn = owner.conn;
    if (!isAllowed(this.settings.whiteList, conn.ip))
      return refuse(Code.addressNotAllowed, `sender address ${conn.ip} is not in ip_white_list (${formatIpWhiteList(this.settings.whiteList) || "empty: nobody"})`);
    if (conn.name !== senderConnectionName(senderId))
      return refuse(
        Code.unauthorized,
        `the connection that asked (${conn.ip}, named ${JSON.stringify(conn.name ?? "")}) is not sender ${senderId}'s: its connection must be named ${senderConnectionName(senderId)}`,
      );
    if (this.activeSessions + this.admitting - replacing() >= this.settings.maxSessions)
      return refuse(Code.busy, `receiver is at max_sessions (${this.settings.maxSessions}); try later`);
    this.admitting++;
    return { code: Code.ok, message: `welcome from ${conn.ip}`, address: conn.ip, ...(conn.user === undefined ? {} : { user: conn.user }) };
  }

  /**
   * Recovery of a crash between placing a part and journaling it: the storage already took the
   * staged file (its `.ready.meta` is left), so the storage is asked whether it holds that digest;
   * if so the load is journaled without loading again. Answers the digest when the part is loaded.
   */
  async recoverPlaced(sender: string, ref: FileRef, kind: PartKind, size: number, sha256?: string): Promise<{ sha256: string } | undefined> {
    const verified = await this.staging.verified(sender, ref, kind);
    if (!verified || verified.size !== size || (sha256 !== undefined && verified.sha256 !== sha256)) return undefined;
    if (!(await Effect.runPromise(this.storage.has(ref, kind, verified.sha256)))) return undefined;
    await this.noteLoaded(sender, ref, kind, verified.size, verified.sha256, verified.facts as TsFileFacts | undefined);
    return { sha256: verified.sha256 };
  }

  /** Catalog first, then the journal: a crash between them repeats an (idempotent) catalog line, never loses one. */
  private async noteLoaded(sender: string, ref: FileRef, kind: PartKind, size: number, sha256: string, facts: TsFileFacts | undefined): Promise<void> {
    if (kind === "tsfile" && facts) {
      await this.catalog.loaded({ sender, ref: { sg: ref.sg, vg: ref.vg, tp: ref.tp, name: ref.name }, devices: facts.devices, version: facts.version, loadedAt: new Date().toISOString() });
    }
    await this.journal.recordLoaded({ sender, ref, kind, size, sha256 });
    await this.staging.discard(sender, ref, kind);
  }

  /**
   * Loads the parts of one TsFile that are not yet loaded. A part already journaled is skipped; a
   * part the storage already holds with the same digest (a crash between placing it and journaling
   * it) is journaled without loading it again.
   */
  async load(sender: string, load: Load): Promise<Reply> {
    const toLoad: StagedPart[] = [];
    let facts: TsFileFacts | undefined;
    let recovered = 0;
    for (const part of load.parts) {
      const done = this.journal.find(sender, load, part.kind);
      if (done && done.sha256 === part.sha256) {
        await this.staging.discard(sender, load, part.kind);
        continue;
      }
      const ready = await this.staging.ready(sender, load, part.kind, part.sha256);
      if (!ready) {
        if (await this.recoverPlaced(sender, load, part.kind, part.size, part.sha256)) {
          recovered++;
          continue;
        }
        return { code: Code.notReady, message: `${load.name} (${part.kind}) was not received with digest ${part.sha256.slice(0, 12)}…; send it first` };
      }
      if (part.kind === "tsfile") facts = ready.facts as TsFileFacts | undefined;
      if (await Effect.runPromise(this.storage.has(load, part.kind, part.sha256))) {
        await this.noteLoaded(sender, load, part.kind, ready.size, ready.sha256, ready.facts as TsFileFacts | undefined);
        recovered++;
        continue;
      }
      toLoad.push({ kind: part.kind, path: ready.path, size: ready.size, sha256: ready.sha256 });
    }
    if (toLoad.length === 0) return { code: Code.have, message: recovered > 0 ? "already loaded (recovered)" : "already loaded" };
    await Effect.runPromise(this.storage.load({ senderId: sender, ref: load, parts: toLoad, facts }));
    // Catalog first (idempotent), then one journal append and one fsync for the whole file.
    if (facts && toLoad.some((p) => p.kind === "tsfile")) {
      await this.catalog.loaded({ sender, ref: { sg: load.sg, vg: load.vg, tp: load.tp, name: load.name }, devices: facts.devices, version: facts.version, loadedAt: new Date().toISOString() });
    }
    await this.journal.recordLoadedAll(toLoad.map((p) => ({ sender, ref: { sg: load.sg, vg: load.vg, tp: load.tp, name: load.name }, kind: p.kind, size: p.size, sha256: p.sha256 })));
    for (const p of toLoad) await this.staging.discard(sender, load, p.kind);
    this.stats.loads++;
    return { code: Code.ok, message: `loaded ${toLoad.map((p) => p.kind).join(", ")}` };
  }
}
