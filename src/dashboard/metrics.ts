// Prometheus metrics of a sender or receiver, for the dashboard's /metrics.
// One registry per process (not prom-client's global one), so tests can run several side by side.
// Totals are read from their owners at scrape time; only durations are observed as they happen.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ReceiverStats } from "../actors/receiver/core.js";
import type { SenderRoundContext } from "../machines/senderRound.js";
import type { ActorBoard } from "./model.js";
import type { RoundCounts } from "./summaries.js";

const DURATION_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600];

/** A counter whose value lives elsewhere (the receiver's stats, the sender's totals). */
const counterOf = (registry: Registry, name: string, help: string, read: () => number): void => {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
};

/** `tsync_actors{machine,state}`: live actors per state, as the dashboard counts them. */
const actorGauge = (registry: Registry, board: ActorBoard): void => {
  new Gauge({
    name: "tsync_actors",
    help: "Live state machine actors by machine and current state",
    labelNames: ["machine", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of board.countByState()) this.set({ machine: c.machine, state: c.state }, c.count);
    },
  });
};

const baseRegistry = (board: ActorBoard): Registry => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  actorGauge(registry, board);
  return registry;
};

export interface ReceiverGauges {
  readonly stats: ReceiverStats;
  readonly activeSessions: number;
}

export const receiverRegistry = (board: ActorBoard, read: () => ReceiverGauges): Registry => {
  const registry = baseRegistry(board);
  const stat = (name: string, help: string, pick: (s: ReceiverStats) => number) =>
    counterOf(registry, name, help, () => pick(read().stats));
  stat("tsync_receiver_received_bytes_total", "Bytes of file chunks written to staging", (s) => s.bytes);
  stat("tsync_receiver_files_loaded_total", "TsFiles loaded into storage", (s) => s.loads);
  stat("tsync_receiver_files_deleted_total", "Files deleted from storage because the sender deleted them", (s) => s.deleted);
  stat(
    "tsync_receiver_digest_mismatches_total",
    "Parts refused because their SHA-256 differed from the sender's",
    (s) => s.digestMismatches,
  );
  stat("tsync_receiver_conflicts_total", "Storage-group claims refused because another sender owns the group", (s) => s.conflicts);
  stat(
    "tsync_receiver_refused_senders_total",
    "Hellos refused (sync disabled, address not allowed, at capacity, wrong subject)",
    (s) => s.refused,
  );
  stat("tsync_receiver_rejected_messages_total", "Malformed or out-of-place messages answered with an error", (s) => s.rejected);
  stat("tsync_receiver_sessions_opened_total", "Sender sessions admitted", (s) => s.sessionsOpened);
  stat(
    "tsync_receiver_dropped_replies_total",
    "Requests whose reply subject was not the asking sender's own inbox (never answered)",
    (s) => s.droppedReplies,
  );
  new Gauge({
    name: "tsync_receiver_active_sessions",
    help: "Sender sessions open now",
    registers: [registry],
    collect() {
      this.set(read().activeSessions);
    },
  });
  const sessions = new Histogram({
    name: "tsync_receiver_session_duration_seconds",
    help: "How long sender sessions lasted, from hello to bye, expiry or stop",
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  board.listen({
    ended: (a) => {
      if (a.machine === "receiverSession" && a.endedAt !== undefined) sessions.observe((a.endedAt - a.startedAt) / 1000);
    },
  });
  return registry;
};

/** As `roundSucceeded`: every file synced, no conflict, the round ran. */
const roundOk = (s: RoundCounts): boolean => s.roundError === undefined && s.failed === 0 && s.conflicts === 0;

export interface SenderCounts {
  readonly bytesSent: number;
  readonly filesSent: number;
  readonly filesSkipped: number;
  readonly filesFailed: number;
  readonly conflicts: number;
  readonly deleted: number;
  readonly roundsOk: number;
  readonly roundsFailed: number;
  readonly lastRoundEndedAt: number | undefined;
}

/**
 * What the sender did since it started: ended rounds' counts plus the running round's so far, so
 * the numbers move during a long round and never step back when it ends.
 */
export class SenderTotals {
  private bytesSent = 0;
  private ended: Omit<SenderCounts, "bytesSent"> = {
    filesSent: 0,
    filesSkipped: 0,
    filesFailed: 0,
    conflicts: 0,
    deleted: 0,
    roundsOk: 0,
    roundsFailed: 0,
    lastRoundEndedAt: undefined,
  };
  private readonly running = new Map<string, RoundCounts>();

  attach(board: ActorBoard): this {
    board.listen({
      observed: (a, before, context) => {
        if (a.machine !== "senderRound") return;
        const was = (before as SenderRoundContext | undefined)?.parts ?? [];
        const now = (context as SenderRoundContext).parts;
        // Parts only grow by a finished transfer, and start over at [] for the next file or a retry.
        if (now !== was && now.length > was.length) for (const p of now.slice(was.length)) this.bytesSent += p.bytesSent;
        if (a.details.kind === "senderRound" && a.endedAt === undefined) this.running.set(a.id, a.details.summary);
      },
      ended: (a) => {
        if (a.details.kind !== "senderRound" || a.endedAt === undefined) return;
        this.running.delete(a.id);
        const s = a.details.summary;
        const e = this.ended;
        const ok = roundOk(s);
        this.ended = {
          filesSent: e.filesSent + s.sent,
          filesSkipped: e.filesSkipped + s.skipped,
          filesFailed: e.filesFailed + s.failed,
          conflicts: e.conflicts + s.conflicts,
          deleted: e.deleted + s.deleted,
          roundsOk: e.roundsOk + (ok ? 1 : 0),
          roundsFailed: e.roundsFailed + (ok ? 0 : 1),
          lastRoundEndedAt: a.endedAt,
        };
      },
    });
    return this;
  }

  counts(): SenderCounts {
    const live = [...this.running.values()];
    const sum = (pick: (r: RoundCounts) => number) => live.reduce((n, r) => n + pick(r), 0);
    const e = this.ended;
    return {
      ...e,
      bytesSent: this.bytesSent,
      filesSent: e.filesSent + sum((r) => r.sent),
      filesSkipped: e.filesSkipped + sum((r) => r.skipped),
      filesFailed: e.filesFailed + sum((r) => r.failed),
      conflicts: e.conflicts + sum((r) => r.conflicts),
      deleted: e.deleted + sum((r) => r.deleted),
    };
  }
}

export const senderRegistry = (board: ActorBoard, totals: SenderTotals): Registry => {
  const registry = baseRegistry(board);
  const total = (name: string, help: string, pick: (c: SenderCounts) => number) =>
    counterOf(registry, name, help, () => pick(totals.counts()));
  total("tsync_sender_sent_bytes_total", "Bytes of file parts sent (resumed parts count only what was sent)", (c) => c.bytesSent);
  total("tsync_sender_files_sent_total", "TsFiles sent, verified and loaded", (c) => c.filesSent);
  total(
    "tsync_sender_files_skipped_total",
    "TsFiles not sent: already on the receiver, or their storage group is owned by another sender",
    (c) => c.filesSkipped,
  );
  total("tsync_sender_files_failed_total", "TsFiles that failed a round after all retries", (c) => c.filesFailed);
  total("tsync_sender_conflicts_total", "Storage groups refused with CONFLICT", (c) => c.conflicts);
  total("tsync_sender_files_deleted_total", "Deletions the receiver confirmed", (c) => c.deleted);
  new Counter({
    name: "tsync_sender_rounds_total",
    help: "Sync rounds ended, by result (ok: every file synced)",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      const c = totals.counts();
      this.reset();
      this.inc({ result: "ok" }, c.roundsOk);
      this.inc({ result: "failed" }, c.roundsFailed);
    },
  });
  new Gauge({
    name: "tsync_sender_last_round_end_timestamp_seconds",
    help: "When the last round ended (Unix time); alert when it grows old",
    registers: [registry],
    collect() {
      const at = totals.counts().lastRoundEndedAt;
      if (at !== undefined) this.set(at / 1000);
    },
  });
  const rounds = new Histogram({
    name: "tsync_sender_round_duration_seconds",
    help: "How long sync rounds took, from recovery to bye",
    labelNames: ["result"],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  board.listen({
    ended: (a) => {
      if (a.details.kind === "senderRound" && a.endedAt !== undefined)
        rounds.observe({ result: roundOk(a.details.summary) ? "ok" : "failed" }, (a.endedAt - a.startedAt) / 1000);
    },
  });
  return registry;
};
