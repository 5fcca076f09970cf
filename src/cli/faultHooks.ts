// Fault-injection hooks for the fault tests, armed only by TSYNC_FAULT_INJECTION.
import type { InspectionEvent } from "xstate";

/**
 * Fault injection for the fault tests, which drive real `tsync` processes. The hooks break
 * transfers on purpose, so they are honoured only when TSYNC_FAULT_INJECTION holds exactly this
 * value; a hook variable without it is ignored with a warning, and an armed process says so loudly.
 */
export const faultArmingValue = "yes-break-my-transfers";

export const faultVariables = {
  /** `<machine>.<state>[#n]`: the process stops itself (SIGSTOP) on the n-th entry of that state, so a test can kill -9 it exactly there. */
  freezeIn: "TSYNC_FAULT_FREEZE_IN",
  /** `<offset>[x<times>]`: the chunk that carries that byte of a part is corrupted on the wire (the first `times` times, default 1). */
  corruptChunk: "TSYNC_FAULT_CORRUPT_CHUNK",
  /** `<bytes>`: staging behaves as if it lived on a filesystem that small (ENOSPC past it). */
  stagingCapacity: "TSYNC_FAULT_STAGING_CAPACITY",
} as const;

/** `1` prints each state a machine enters as one line `state <machine> <state>` (and the round summary as JSON). */
export const traceVariable = "TSYNC_TRACE_STATES";

export interface FreezePoint {
  readonly machine: string;
  readonly state: string;
  readonly nth: number;
}

export interface FaultHooks {
  readonly freezeIn: FreezePoint | undefined;
  readonly corruptChunk: ((chunk: Buffer, offset: number) => Buffer) | undefined;
  readonly stagingCapacity: number | undefined;
}

const none: FaultHooks = { freezeIn: undefined, corruptChunk: undefined, stagingCapacity: undefined };

type Env = Readonly<Record<string, string | undefined>>;

const bad = (name: string, value: string, expected: string): Error => new Error(`${name}=${JSON.stringify(value)} is not ${expected}`);

export const parseFreezePoint = (value: string): FreezePoint => {
  const m = /^([A-Za-z][\w-]*)\.([A-Za-z]\w*)(?:#([1-9]\d*))?$/.exec(value);
  if (!m) throw bad(faultVariables.freezeIn, value, "<machine>.<state>[#n], e.g. senderRound.verifying#2");
  return { machine: m[1]!, state: m[2]!, nth: m[3] === undefined ? 1 : Number(m[3]) };
};

/** Flips one byte of the chunk that carries byte `offset` of a part, `times` times in all. */
export const chunkCorrupter = (value: string): ((chunk: Buffer, offset: number) => Buffer) => {
  const m = /^(\d{1,15})(?:x([1-9]\d{0,5}))?$/.exec(value);
  if (!m) throw bad(faultVariables.corruptChunk, value, "<offset>[x<times>], e.g. 1048576x1");
  const target = Number(m[1]);
  let left = m[2] === undefined ? 1 : Number(m[2]);
  return (chunk, offset) => {
    if (left === 0 || target < offset || target >= offset + chunk.length) return chunk;
    left--;
    const copy = Buffer.from(chunk);
    copy[target - offset] = (copy[target - offset] ?? 0) ^ 0xff;
    return copy;
  };
};

/** Reads the hooks from the environment; without the exact arming value every hook is off. */
export const readFaultHooks = (env: Env, warn: (line: string) => void): FaultHooks => {
  const asked = Object.values(faultVariables).filter((name) => (env[name] ?? "") !== "");
  if (asked.length === 0) return none;
  if (env["TSYNC_FAULT_INJECTION"] !== faultArmingValue) {
    warn(`ignoring ${asked.join(", ")}: fault injection is not armed (TSYNC_FAULT_INJECTION)`);
    return none;
  }
  warn(`FAULT INJECTION ARMED (${asked.join(", ")}): this process breaks transfers on purpose; it is meant for fault tests only`);
  const freeze = env[faultVariables.freezeIn];
  const corrupt = env[faultVariables.corruptChunk];
  const capacity = env[faultVariables.stagingCapacity];
  if (capacity && !/^\d{1,15}$/.test(capacity)) throw bad(faultVariables.stagingCapacity, capacity, "a number of bytes");
  return {
    freezeIn: freeze ? parseFreezePoint(freeze) : undefined,
    corruptChunk: corrupt ? chunkCorrupter(corrupt) : undefined,
    stagingCapacity: capacity ? Number(capacity) : undefined,
  };
};

/** What tells two entries of the same state apart (the next part, the next file, the next request). */
const progressOf = (context: unknown): string => {
  if (typeof context !== "object" || context === null) return "";
  const c = context as Record<string, unknown>;
  return ["index", "partIndex", "attempts", "handshakes", "replies", "rounds"].map((k) => String(c[k] ?? "")).join(",");
};

/**
 * An inspector that prints `state <machine> <state>` once per state entered, and stops the process
 * (SIGSTOP) at `freezeIn`: the state is entered and its invoked step started, nothing after it ran.
 */
export const stateTracer = (
  print: ((line: string) => void) | undefined,
  freezeIn: FreezePoint | undefined,
  freeze: () => void = () => process.kill(process.pid, "SIGSTOP"),
) => {
  const last = new Map<string, string>();
  let entries = 0;
  return (e: InspectionEvent): void => {
    if (e.type !== "@xstate.snapshot") return;
    const snap = e.snapshot as { value?: unknown; context?: unknown; machine?: { id?: string } };
    const machine = snap.machine?.id;
    if (machine === undefined || snap.value === undefined) return;
    const value = typeof snap.value === "string" ? snap.value : JSON.stringify(snap.value);
    const signature = `${value}|${progressOf(snap.context)}`;
    if (last.get(e.actorRef.sessionId) === signature) return;
    last.set(e.actorRef.sessionId, signature);
    print?.(`state ${machine} ${value}`);
    if (freezeIn && freezeIn.machine === machine && freezeIn.state === value && ++entries === freezeIn.nth) freeze();
  };
};
