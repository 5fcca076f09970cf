import type { FileRef, PartKind } from "./messages.js";

/** The file name of a part beside its TsFile, as IoTDB names side files. */
export const partFileName = (tsfileName: string, kind: PartKind): string =>
  kind === "tsfile" ? tsfileName : `${tsfileName}.${kind}`;

/** Send order: resource first (it is small and says what the TsFile holds), then the TsFile, then deletions. */
export const partOrder: ReadonlyArray<PartKind> = ["resource", "tsfile", "mods", "mods2"];

/**
 * Place order: the TsFile before its .resource, since a .resource beside a TsFile is what tells
 * IoTDB the TsFile is sealed and complete.
 */
export const placeOrder: ReadonlyArray<PartKind> = ["tsfile", "mods", "mods2", "resource"];

/**
 * The one key of a file, or of one sender's copy of it, or of one part: `[sender NUL]sg/vg/tp/name[NUL kind]`.
 * Names are checked segments (no "/") and sender ids are tokens, so distinct files never share a
 * key. The bare form is stored in the sender's confirmed journal, so it must not change.
 */
export const fileKey = (ref: FileRef, of: { readonly sender?: string; readonly kind?: PartKind } = {}): string =>
  `${of.sender === undefined ? "" : `${of.sender}\u0000`}${ref.sg}/${ref.vg}/${ref.tp}/${ref.name}${of.kind === undefined ? "" : `\u0000${of.kind}`}`;
