// Reading the snapshots that XState's inspection hands over as `unknown`: a machine's or not, and its state as one line.

export type MachineStatus = "active" | "done" | "error" | "stopped";

export interface MachineSnapshotLike {
  readonly value: unknown;
  readonly context: unknown;
  readonly status: MachineStatus;
  readonly machine: { readonly id: string };
}

/** Machine actors only: invoked promises (transfer, verify…) have no machine and no state value. */
export const machineSnapshot = (s: unknown): MachineSnapshotLike | undefined =>
  typeof s === "object" && s !== null && "machine" in s && "value" in s && "context" in s && "status" in s
    ? (s as MachineSnapshotLike)
    : undefined;

/** The full state value as one line: `a.b`, for logs, tables and reports. */
export const stateText = (value: unknown): string => {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null) {
    const [k, v] = Object.entries(value)[0] ?? [];
    return k === undefined
      ? ""
      : v === undefined || (typeof v === "object" && v !== null && Object.keys(v).length === 0)
        ? k
        : `${k}.${stateText(v)}`;
  }
  return "";
};
