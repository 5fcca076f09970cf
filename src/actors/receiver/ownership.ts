import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

export interface Owner {
  readonly sg: string;
  readonly senderId: string;
  readonly since: string;
}

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

const isOwner = (v: unknown): v is Owner =>
  typeof v === "object" && v !== null && typeof (v as Owner).sg === "string" && typeof (v as Owner).senderId === "string" && typeof (v as Owner).since === "string";

/**
 * Storage group → first sender that offered it. Lives in JetStream KV so it survives restarts and
 * every receiver instance of the group agrees: `create` succeeds for exactly one claimant.
 */
export class OwnershipRegistry {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, group: string): Promise<OwnershipRegistry> {
    const kvm = new Kvm(nc);
    const kv = await kvm.create(ownersBucket(group), { history: 1 });
    return new OwnershipRegistry(kv);
  }

  async owner(sg: string): Promise<Owner | undefined> {
    const e = await this.kv.get(ownerKey(sg));
    if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
    const v: unknown = e.json();
    if (!isOwner(v)) throw new Error(`the ownership entry of ${sg} is not an owner record: ${e.string().slice(0, 200)}`);
    return v;
  }

  /**
   * Claims `sg` for `senderId` unless someone has it; answers who owns it now. Reads first, so an
   * owner asking again costs one read; `create` succeeds for exactly one of racing claimants.
   */
  async claim(sg: string, senderId: string): Promise<Owner> {
    for (let attempt = 0; ; attempt++) {
      const existing = await this.owner(sg);
      if (existing) return existing;
      const mine: Owner = { sg, senderId, since: new Date().toISOString() };
      try {
        await this.kv.create(ownerKey(sg), JSON.stringify(mine));
        return mine;
      } catch (e) {
        // Another claimant won between our read and create (or a release raced us): read again.
        if (attempt === 2) throw e;
      }
    }
  }

  async list(): Promise<ReadonlyArray<Owner>> {
    const out: Owner[] = [];
    for await (const k of await this.kv.keys()) {
      const e = await this.kv.get(k);
      if (!e || e.operation !== "PUT" || e.length === 0) continue;
      const v: unknown = e.json();
      if (isOwner(v)) out.push(v);
    }
    return out.sort((a, b) => (a.sg < b.sg ? -1 : a.sg > b.sg ? 1 : 0));
  }

  /** Frees a group; the next sender to offer it becomes its owner. */
  async release(sg: string): Promise<boolean> {
    const had = await this.owner(sg);
    if (!had) return false;
    await this.kv.purge(ownerKey(sg));
    return true;
  }
}
