import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

export interface Owner {
  readonly sg: string;
  readonly senderId: string;
  readonly since: string;
}

export const ownersBucket = (group: string): string => `tsync-owners-${group}`;

/** KV keys allow [-/_=.a-zA-Z0-9]; anything else in a group name is escaped as `=XX` (UTF-8 hex). */
export const ownerKey = (sg: string): string =>
  [...new TextEncoder().encode(sg)]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[-_.a-zA-Z0-9]/.test(c) ? c : `=${b.toString(16).padStart(2, "0")}`;
    })
    .join("");

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
    return e.json<Owner>();
  }

  /** Claims `sg` for `senderId` unless someone has it; answers who owns it now. */
  async claim(sg: string, senderId: string): Promise<Owner> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const mine: Owner = { sg, senderId, since: new Date().toISOString() };
      try {
        await this.kv.create(ownerKey(sg), JSON.stringify(mine));
        return mine;
      } catch (e) {
        const existing = await this.owner(sg);
        if (existing) return existing;
        // Deleted between our create and get (a release raced us): try again.
        if (attempt === 2) throw e;
      }
    }
    throw new Error("unreachable");
  }

  async list(): Promise<ReadonlyArray<Owner>> {
    const out: Owner[] = [];
    for await (const k of await this.kv.keys()) {
      const e = await this.kv.get(k);
      if (e && e.operation === "PUT" && e.length > 0) out.push(e.json<Owner>());
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
