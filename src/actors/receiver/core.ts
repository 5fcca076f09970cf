import { Effect } from "effect";
import type { Reply } from "../../machines/receiverSession.js";
import type { Load } from "../../protocol/messages.js";
import { Code } from "../../protocol/status.js";
import { sessionPrefix } from "../../protocol/subjects.js";
import { isAllowed, type IpWhiteList } from "../../config/ipWhiteList.js";
import { formatIpWhiteList } from "../../config/ipWhiteList.js";
import type { StagedPart, Storage, TsFileFacts } from "../../plugins/storage.js";
import { connectionFor } from "./addressOf.js";
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
  /** Monitoring endpoint of the NATS server, which tells a connection's real address. */
  readonly monitorUrl: string | undefined;
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

  /** is_sync_enable, then the address the server saw against ip_white_list, then capacity. */
  async admit(helloReplySubject: string): Promise<Reply> {
    const refuse = (code: number, message: string): Reply => {
      this.stats.refused++;
      return { code, message };
    };
    if (!this.settings.enabled) return refuse(Code.disabled, "sync is disabled on this receiver (is_sync_enable=false)");
    if (!this.settings.monitorUrl) return refuse(Code.addressNotAllowed, "the receiver cannot establish sender addresses: set nats_monitor_url");
    let address: string | undefined;
    try {
      address = (await connectionFor(this.settings.monitorUrl, helloReplySubject))?.ip;
    } catch (e) {
      return refuse(Code.internal, `cannot ask the NATS server for the sender's address: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (address === undefined) return refuse(Code.addressNotAllowed, "the NATS server knows no connection for this request's reply subject");
    if (!isAllowed(this.settings.whiteList, address))
      return refuse(Code.addressNotAllowed, `sender address ${address} is not in ip_white_list (${formatIpWhiteList(this.settings.whiteList) || "empty: nobody"})`);
    if (this.activeSessions >= this.settings.maxSessions) return refuse(Code.busy, `receiver is at max_sessions (${this.settings.maxSessions}); try later`);
    return { code: Code.ok, message: `welcome from ${address}`, address };
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
      if (done && done.sha256 === part.sha256) continue;
      const ready = await this.staging.ready(sender, load, part.kind, part.sha256);
      if (!ready) return { code: Code.notReady, message: `${load.name} (${part.kind}) was not received with digest ${part.sha256.slice(0, 12)}…; send it first` };
      if (part.kind === "tsfile") facts = ready.facts as TsFileFacts | undefined;
      if (await Effect.runPromise(this.storage.has(load, part.kind, part.sha256))) {
        await this.journal.recordLoaded({ sender, ref: load, kind: part.kind, size: ready.size, sha256: ready.sha256 });
        await this.staging.discard(sender, load, part.kind);
        recovered++;
        continue;
      }
      toLoad.push({ kind: part.kind, path: ready.path, size: ready.size, sha256: ready.sha256 });
    }
    if (toLoad.length === 0) return { code: Code.have, message: recovered > 0 ? "already loaded (recovered)" : "already loaded" };
    await Effect.runPromise(this.storage.load({ senderId: sender, ref: load, parts: toLoad, facts }));
    for (const p of toLoad) {
      await this.journal.recordLoaded({ sender, ref: load, kind: p.kind, size: p.size, sha256: p.sha256 });
      await this.staging.discard(sender, load, p.kind);
    }
    if (facts && toLoad.some((p) => p.kind === "tsfile")) {
      await this.catalog.loaded({ sender, ref: { sg: load.sg, vg: load.vg, tp: load.tp, name: load.name }, devices: facts.devices, version: facts.version, loadedAt: new Date().toISOString() });
    }
    this.stats.loads++;
    return { code: Code.ok, message: `loaded ${toLoad.map((p) => p.kind).join(", ")}` };
  }
}
