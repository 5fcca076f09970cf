// The fleet view's store: senders' reports of their actors, checked and kept in a JetStream KV
// bucket (the last state per sender and actor), so a dashboard opened late sees the whole fleet.
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Result, Schema } from "effect";
import { decodeFleetReport, FleetRecord, maxFleetActorsPerSender, maxFleetReportBytes } from "../../protocol/fleet.js";
import { encodeJson } from "../../protocol/messages.js";
import { isToken } from "../../protocol/names.js";
import { fleetWildcard, receiverQueue } from "../../protocol/subjects.js";
import { ensureStream } from "./ownership.js";

export const fleetBucket = (group: string): string => `tsync-fleet-${group}`;

/** Sender ids are `[A-Za-z0-9_-]` tokens and actor names a fixed pair, so the key needs no escaping. */
export const fleetKey = (sender: string, actor: string): string => `${sender}.${actor}`;

/** How often reports waiting to be stored are written: a flood of reports costs one write per actor per period. */
export const fleetFlushMs = 250;

/** A record's room: the report and what the receiver adds. */
const maxRecordBytes = maxFleetReportBytes + 512;

/** Enough for 10,000 senders with both their actors; the bucket refuses writes beyond it. */
const maxBucketBytes = 10_000 * maxFleetActorsPerSender * maxRecordBytes;

export type FleetChange =
  | { readonly kind: "put"; readonly record: FleetRecord }
  | { readonly kind: "delete"; readonly sender: string; readonly actor: string };

const decodeRecord = Schema.decodeUnknownResult(FleetRecord);

export interface FleetStats {
  stored: number;
  rejected: number;
}

/**
 * Hears the senders' fleet subjects (over the connection that hears senders) and writes the
 * bucket (over the store connection). Several receivers of a group share the reports through a
 * queue group, and each follows the whole bucket through its own watch.
 */
export class FleetStore {
  readonly stats: FleetStats = { stored: 0, rejected: 0 };
  private readonly pending = new Map<string, FleetRecord>();
  private readonly addresses = new Map<string, string>();
  private readonly watches = new Set<() => void>();
  private sub: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  private constructor(
    private readonly kv: KV,
    private readonly log: (line: string) => void,
    private readonly now: () => number,
  ) {}

  static async open(
    service: NatsConnection,
    store: NatsConnection,
    group: string,
    options: { readonly replicas?: number; readonly log: (line: string) => void; readonly now?: () => number },
  ): Promise<FleetStore> {
    const kv = await new Kvm(store).create(fleetBucket(group), {
      history: 1,
      maxValueSize: maxRecordBytes,
      max_bytes: maxBucketBytes,
      ...(options.replicas === undefined ? {} : { replicas: options.replicas }),
    });
    if (options.replicas !== undefined) await ensureStream(store, `KV_${fleetBucket(group)}`, { replicas: options.replicas });
    const fleet = new FleetStore(kv, options.log, options.now ?? Date.now);
    fleet.hear(service, group);
    fleet.timer = setInterval(() => void fleet.flush(), fleetFlushMs);
    fleet.timer.unref();
    return fleet;
  }

  /** The address the NATS server saw for the sender's latest session: stored with its next report. */
  sawAddress(sender: string, address: string): void {
    if (address !== "") this.addresses.set(sender, address.slice(0, 64));
  }

  /** Every record the bucket holds, then every change, until the returned function is called. */
  async watch(listener: (c: FleetChange) => void): Promise<() => void> {
    const iter = await this.kv.watch({ include: "" });
    const stop = () => {
      this.watches.delete(stop);
      iter.stop();
    };
    this.watches.add(stop);
    void (async () => {
      for await (const e of iter) {
        const change = this.changeOf(e.key, e.operation, e.value);
        if (change) listener(change);
      }
    })().catch((e: unknown) => this.log(`fleet view: bucket watch ended: ${e instanceof Error ? e.message : String(e)}`));
    return stop;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.sub?.unsubscribe();
    for (const stop of this.watches) stop();
    await this.flush().catch(() => undefined);
  }

  private changeOf(key: string, operation: string, value: Uint8Array): FleetChange | undefined {
    const dot = key.indexOf(".");
    const sender = key.slice(0, dot);
    const actor = key.slice(dot + 1);
    if (operation !== "PUT") return { kind: "delete", sender, actor };
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(value));
    } catch {
      return undefined;
    }
    const decoded = decodeRecord(parsed);
    return Result.isSuccess(decoded) ? { kind: "put", record: decoded.success } : undefined;
  }

  private hear(service: NatsConnection, group: string): void {
    const sub = service.subscribe(fleetWildcard(group), { queue: receiverQueue(group) });
    this.sub = sub;
    void (async () => {
      for await (const m of sub) {
        const sender = m.subject.slice(m.subject.lastIndexOf(".") + 1);
        const decoded = decodeFleetReport(m.data);
        if (!isToken(sender) || Result.isFailure(decoded)) {
          this.stats.rejected++;
          if (this.stats.rejected % 1000 === 1)
            this.log(
              `fleet view: dropped a report from ${JSON.stringify(sender)}: ${Result.isFailure(decoded) ? decoded.failure : "not a sender id"}` +
                ` (${this.stats.rejected} dropped so far)`,
            );
          continue;
        }
        const report = decoded.success;
        const address = this.addresses.get(sender);
        this.pending.set(fleetKey(sender, report.actor), {
          sender,
          report,
          seenAt: this.now(),
          ...(address ? { address } : {}),
        });
      }
    })().catch((e: unknown) => this.log(`fleet view: subscription ended: ${e instanceof Error ? e.message : String(e)}`));
  }

  /** Writes the reports that came since the last flush, the newest per actor. */
  private async flush(): Promise<void> {
    if (this.flushing || this.pending.size === 0) return;
    this.flushing = true;
    const batch = [...this.pending.values()];
    this.pending.clear();
    try {
      await Promise.all(
        batch.map(async (r) => {
          await this.kv.put(fleetKey(r.sender, r.report.actor), encodeJson(r));
          this.stats.stored++;
        }),
      );
    } catch (e) {
      this.log(`fleet view: could not store reports: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.flushing = false;
    }
  }
}
