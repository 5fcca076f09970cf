import { TsFileFormatError } from "../../tsfile/bytes.js";
import { inspectTsFile } from "../tsfileFiles.js";
import type { TsFileCheck } from "./core.js";

/**
 * The verify step's format check: header and tail magic, version 3 or 4, and an index that parses
 * to devices and time ranges (read from the end of the file, never the whole of it).
 */
export const validateTsFile = async (path: string): Promise<TsFileCheck> => {
  try {
    const info = await inspectTsFile(path);
    return {
      ok: true,
      facts: {
        version: info.version,
        devices: info.devices.map((d) => ({
          id: d.id,
          startTime: d.startTime === null ? null : String(d.startTime),
          endTime: d.endTime === null ? null : String(d.endTime),
        })),
      },
    };
  } catch (e) {
    if (e instanceof TsFileFormatError) return { ok: false, reason: e.message };
    throw e;
  }
};
