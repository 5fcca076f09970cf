// `tsync status`: asks a running sender or receiver what it is doing, and prints it.
import { join, resolve } from "node:path";
import { Effect } from "effect";
import { readProperties } from "../config/properties.js";
import { parseReceiverConfig } from "../config/receiver.js";
import { parseSenderConfig, senderWorkDirectory } from "../config/sender.js";
import { exitCodes } from "./help.js";
import { oneLine } from "./log.js";
import type { ReceiverStatus } from "./receiverWatch.js";
import type { SenderStatus } from "./senderWatch.js";
import { askStatus } from "./statusEndpoint.js";

type Role = "sender" | "receiver";

/** Where a process of that role and config keeps its status file. */
export const statusDirOf = (role: Role, props: Readonly<Record<string, string>>, source: string): Effect.Effect<string, unknown> =>
  role === "sender"
    ? Effect.map(Effect.fromResult(parseSenderConfig(props, process.env, source)), senderWorkDirectory)
    : Effect.map(Effect.fromResult(parseReceiverConfig(props, process.env, source)), (c) =>
        join(resolve(c.receiver_data_directory), ".tsync"),
      );

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const ago = (iso: string, now: number) => {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  return s < 0 ? `in ${-s} s` : `${s} s ago`;
};

export const formatSenderStatus = (s: SenderStatus, now = Date.now()): string => {
  const lines = [`sender ${s.sender}: ${s.state}, ${s.rounds} round(s) run`, `  data directory ${s.dataDirectory} → ${s.receiver}`];
  if (s.round) {
    const f = s.round.file;
    lines.push(
      `  round since ${s.round.startedAt} (${ago(s.round.startedAt, now)}), ${s.round.state}: ${s.round.filesDone}/${s.round.files} files done, ` +
        `${mb(s.round.doneBytes)} of ${mb(s.round.totalBytes)}`,
    );
    if (f) lines.push(`  current file ${f.name}: ${mb(f.done)} of ${mb(f.size)}`);
  }
  const l = s.lastRound;
  lines.push(
    l
      ? `  last round ${l.ok ? "ok" : l.error ? "FAILED" : "finished with problems"} at ${l.endedAt} (${ago(l.endedAt, now)}): ` +
          `${l.sent} sent (${mb(l.bytesSent)}), ${l.skipped} skipped, ${l.failed} failed, ${l.conflicts} conflict(s), ${l.deleted} deleted` +
          (l.error ? `; ${l.error}` : "")
      : "  last round: none yet",
  );
  lines.push(
    `  next round: ${s.nextRoundAt ? `${s.nextRoundAt} (${ago(s.nextRoundAt, now)}, sooner on a sealed file with sync_on_seal)` : s.round ? "after this one" : "none scheduled"}`,
  );
  lines.push(`  pending: ${s.pending.files} file(s), ${mb(s.pending.bytes)} (${s.pending.asOf})`);
  lines.push(`  quarantined: ${s.quarantined.length} file(s)`);
  for (const q of s.quarantined) lines.push(`    ${q.file}: ${q.reason} (after ${q.attempts} attempt(s))`);
  lines.push(`  conflicts: ${s.conflicts.length}`);
  for (const c of s.conflicts) lines.push(`    ${c.sg}: ${c.message}`);
  return lines.map(oneLine).join("\n");
};

export const formatReceiverStatus = (r: ReceiverStatus): string => {
  const lines = [
    `receiver group ${r.group} (NATS ${r.nats}), sync ${r.syncEnabled ? "enabled" : "disabled"}: ${r.sessions.length} open session(s)`,
  ];
  for (const s of r.sessions) {
    lines.push(
      `  session ${s.session} of ${s.sender} from ${s.address || "?"}: ${s.state} since ${s.openedAt}, ${mb(s.bytes)}, ` +
        `${s.files.loaded} loaded, ${s.files.deleted} deleted, ${s.files.rejected} rejected`,
    );
    if (s.file) lines.push(`    receiving ${s.file.name} (${s.file.part}): ${mb(s.file.received)} of ${mb(s.file.size)}`);
    if (s.lastReply && s.lastReply.code !== 0) lines.push(`    last reply: code ${s.lastReply.code}: ${s.lastReply.message}`);
  }
  const senders = Object.entries(r.senders);
  lines.push(`per sender since start (${senders.length}):`);
  for (const [id, t] of senders)
    lines.push(
      `  ${id}: ${t.sessions} session(s), ${mb(t.bytes)} received, ${t.loaded} loaded, ${t.deleted} deleted, ${t.rejected} rejected`,
    );
  return lines.map(oneLine).join("\n");
};

/** A config file with data_directory is a sender's; any other, a receiver's. */
const roleOf = (props: Readonly<Record<string, string>>): Role => ("data_directory" in props ? "sender" : "receiver");

/** `tsync status [sender|receiver] [--config FILE] [--json]`. */
export const runStatus = (o: { readonly role: string | undefined; readonly config: string | undefined; readonly json: boolean }) =>
  Effect.gen(function* () {
    if (o.role !== undefined && o.role !== "sender" && o.role !== "receiver") {
      process.stderr.write(`tsync status: ROLE is sender or receiver, not ${JSON.stringify(o.role)}\n`);
      return exitCodes.usage;
    }
    if (o.role === undefined && o.config === undefined) {
      process.stderr.write("tsync status: name the ROLE (sender or receiver) or the --config FILE the process runs with\n");
      return exitCodes.usage;
    }
    const path = o.config ?? `conf/${o.role}.properties`;
    const props = yield* readProperties(path);
    const role = (o.role as Role | undefined) ?? roleOf(props);
    const dir = yield* statusDirOf(role, props, path);
    const reach = yield* Effect.promise(() => askStatus(dir));
    if (reach.kind === "notRunning") {
      if (o.json) process.stdout.write(JSON.stringify({ role, running: false, reason: reach.reason }) + "\n");
      else process.stdout.write(`no ${role} is running with ${path}: ${reach.reason}\n`);
      return exitCodes.notRunning;
    }
    if (reach.kind === "noAnswer") {
      process.stderr.write(`tsync status: the ${role} (pid ${reach.address.pid}) did not answer: ${reach.reason}\n`);
      return exitCodes.failed;
    }
    const status = reach.status as SenderStatus | ReceiverStatus;
    if (o.json) process.stdout.write(JSON.stringify({ running: true, pid: reach.address.pid, ...status }, null, 2) + "\n");
    else
      process.stdout.write(
        `pid ${reach.address.pid}, tsync ${reach.address.version}, up since ${reach.address.startedAt}\n` +
          (status.role === "sender" ? formatSenderStatus(status) : formatReceiverStatus(status)) +
          "\n",
      );
    if (status.role === "sender") {
      const l = status.lastRound;
      return l && !l.ok ? exitCodes.failed : exitCodes.ok;
    }
    return exitCodes.ok;
  });
