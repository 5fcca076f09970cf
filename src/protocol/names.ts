/**
 * Names that arrive from the wire become path segments on the receiver, so each must be exactly one
 * harmless segment: no separators, no NUL, not "." or "..", no leading dash or dot tricks.
 */
const segmentPattern = /^(?!\.{1,2}$)[\p{L}\p{N}_.\-]{1,255}$/u;
const tokenPattern = /^[A-Za-z0-9_-]{1,64}$/;
const numericPattern = /^-?[0-9]{1,19}$/;

/** NAME_MAX of Linux filesystems, in bytes: a longer segment fails in the kernel (ENAMETOOLONG), not here. */
export const maxSegmentBytes = 255;

/**
 * The receiver stores a TsFile's parts and their staging state beside it under longer names, the
 * longest `.<name>.resource.ready.meta.<8>.tmp` (34 bytes more); the rest is spare.
 */
export const maxTsFileNameBytes = 215;

const utf8 = new TextEncoder();
const byteLength = (s: string): number => utf8.encode(s).length;

export const isSegment = (s: unknown): s is string => typeof s === "string" && segmentPattern.test(s) && byteLength(s) <= maxSegmentBytes;

/** A NATS subject token we put ids into (sender id, session id, receiver group). */
export const isToken = (s: unknown): s is string => typeof s === "string" && tokenPattern.test(s);

/** Virtual storage group, region and time partition folders are numbers in IoTDB's layouts. */
export const isNumericSegment = (s: unknown): s is string => typeof s === "string" && numericPattern.test(s);

export const isTsFileName = (s: unknown): s is string =>
  isSegment(s) && s.endsWith(".tsfile") && s.length > ".tsfile".length && byteLength(s) <= maxTsFileNameBytes;

/** Explains why a name was refused, for the status message. */
export const describeBadName = (field: string, value: unknown): string => {
  if (typeof value !== "string") return `${field} must be a string`;
  if (value.length === 0) return `${field} is empty`;
  if (value.includes("\0")) return `${field} contains a NUL byte`;
  if (value.includes("/") || value.includes("\\")) return `${field} ${JSON.stringify(value)} contains a path separator`;
  if (value === "." || value === "..") return `${field} ${JSON.stringify(value)} is not a name`;
  const bytes = byteLength(value);
  if (bytes > maxSegmentBytes) return `${field} is longer than ${maxSegmentBytes} bytes (it has ${bytes})`;
  if (value.endsWith(".tsfile") && bytes > maxTsFileNameBytes && segmentPattern.test(value))
    return `${field} is longer than ${maxTsFileNameBytes} bytes (it has ${bytes}), the most a TsFile name may have so its side files fit`;
  return `${field} ${JSON.stringify(value)} has characters outside letters, digits, '.', '_' and '-'`;
};

/** Explains why a TsFile name was refused. */
export const describeBadTsFileName = (value: unknown): string =>
  isSegment(value) && !(value.endsWith(".tsfile") && value.length > ".tsfile".length)
    ? `file name ${JSON.stringify(value)} does not end in .tsfile`
    : describeBadName("file name", value);
