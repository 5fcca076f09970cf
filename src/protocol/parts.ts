// The parts of a TsFile unit: their kinds and orders, file names, the unit type and file keys.
import type { FileRef, PartKind } from "./messages.js";

/** The file name of a part beside its TsFile, as IoTDB names side files. */
export const partFileName = (tsfileName: string, kind: PartKind): string => (kind === "tsfile" ? tsfileName : `${tsfileName}.${kind}`);

/**
 * Every part kind, once, in send order: resource first (it is small and says what the TsFile
 * holds), then the TsFile, then deletions. Every other list of kinds derives from this one.
 */
export const partOrder = ["resource", "tsfile", "mods", "mods2"] as const satisfies ReadonlyArray<PartKind>;

// Compile-time check: partOrder names every PartKind of the wire schema.
const everyKindListed: [Exclude<PartKind, (typeof partOrder)[number]>] extends [never] ? true : never = true;
void everyKindListed;

/** Side files: IoTDB appends deletions to them after sealing, so they may change under the same name. */
export const isSideKind = (kind: PartKind): boolean => kind !== "tsfile" && kind !== "resource";

/** The side-file kinds, in send order. */
export const sideKinds: ReadonlyArray<PartKind> = partOrder.filter(isSideKind);

/**
 * Place order: the TsFile before its .resource, since a .resource beside a TsFile is what tells
 * IoTDB the TsFile is sealed and complete.
 */
export const placeOrder: ReadonlyArray<PartKind> = [...partOrder.filter((k) => k !== "resource"), "resource"];

/**
 * One file of a unit as a source lists it. `stat` is present for side files, which change after
 * sealing; a sealed TsFile and its .resource never change under the same name, so the scan does
 * not pay a stat for each of them.
 */
export interface SourcePart {
  readonly kind: PartKind;
  readonly path: string;
  readonly stat?: { readonly size: number; readonly mtimeMs: number };
}

/** One file on the sender's disk, pinned for a round, that travels as a part of a TsFile unit. */
export interface LocalPart {
  readonly kind: PartKind;
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** Known when an earlier attempt hashed it; lets the receiver answer "have" exactly. */
  readonly sha256?: string | undefined;
}

/**
 * A sealed TsFile with its side files, in `partOrder`: listed by a source (parts are `SourcePart`),
 * then pinned by the scan and sent, verified and loaded together (parts are `LocalPart`).
 */
export interface SyncUnit<P extends { readonly kind: PartKind; readonly path: string } = LocalPart> {
  readonly ref: FileRef;
  readonly parts: ReadonlyArray<P>;
}

/**
 * The one key of a file, or of one sender's copy of it, or of one part: `[sender NUL]sg/vg/tp/name[NUL kind]`.
 * Names are checked segments (no "/") and sender ids are tokens, so distinct files never share a
 * key. The bare form is stored in the sender's confirmed journal, so it must not change.
 */
export const fileKey = (ref: FileRef, of: { readonly sender?: string; readonly kind?: PartKind } = {}): string =>
  `${of.sender === undefined ? "" : `${of.sender}\u0000`}${ref.sg}/${ref.vg}/${ref.tp}/${ref.name}${of.kind === undefined ? "" : `\u0000${of.kind}`}`;
