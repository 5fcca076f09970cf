// Streaming SHA-256 of files, the same on both ends of a transfer.
import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";

/**
 * Feeds bytes [0, end) of an open file to `hash` in 1 MiB reads; answers how many bytes there
 * were (fewer than `end` when the file is shorter). Resumes re-hash their prefix with it on both
 * sides, so the digest of a resumed transfer still covers the whole file.
 */
export const hashFilePrefix = async (handle: FileHandle, hash: Hash, end: number): Promise<number> => {
  if (end <= 0) return 0;
  const buf = Buffer.allocUnsafe(Math.min(1 << 20, end));
  let pos = 0;
  while (pos < end) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return pos;
};

/** SHA-256 (hex) of a whole file, streamed. */
export const sha256OfFile = async (path: string): Promise<string> => {
  const handle = await open(path, "r");
  try {
    const hash = createHash("sha256");
    await hashFilePrefix(handle, hash, (await handle.stat()).size);
    return hash.digest("hex");
  } finally {
    await handle.close();
  }
};
