import type { PartKind } from "./messages.js";

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
