// How `tsync status` asks a running sender or receiver: the process serves its status on a loopback
// port and writes where, with a secret, to a file only its user can read.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Effect, type Scope } from "effect";
import { tsyncVersion } from "../version.js";

export const statusFileName = "status.json";

/** What the status file holds: enough to reach the process and prove the reader may ask. */
export interface StatusAddress {
  readonly role: "sender" | "receiver";
  readonly pid: number;
  readonly port: number;
  readonly token: string;
  readonly startedAt: string;
  readonly version: string;
}

const isAddress = (v: unknown): v is StatusAddress => {
  if (typeof v !== "object" || v === null) return false;
  const a = v as Record<string, unknown>;
  return (
    (a["role"] === "sender" || a["role"] === "receiver") &&
    Number.isSafeInteger(a["pid"]) &&
    Number.isSafeInteger(a["port"]) &&
    typeof a["token"] === "string" &&
    typeof a["startedAt"] === "string"
  );
};

const sameSecret = (given: string, token: string): boolean => {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
};

const listen = (server: Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

/**
 * Serves `read()` as JSON on a free loopback port for as long as the scope is open, and writes its
 * address to `<dir>/status.json` (mode 600, replaced atomically), removed again when the scope
 * closes. The token in the file is asked of every request: another local user, who can reach the
 * port but not read the file, learns nothing (the status names files and sender addresses).
 */
export const serveStatus = (
  dir: string,
  role: StatusAddress["role"],
  read: () => unknown,
): Effect.Effect<StatusAddress, unknown, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const token = randomBytes(24).toString("hex");
        const server = createServer((req, res) => {
          const auth = req.headers.authorization ?? "";
          const ok = req.method === "GET" && req.url === "/status" && sameSecret(auth, `Bearer ${token}`);
          const body = ok ? JSON.stringify(read()) : JSON.stringify({ error: "not allowed" });
          res.writeHead(ok ? 200 : 403, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
          res.end(body);
        });
        const port = await listen(server);
        const address: StatusAddress = { role, pid: process.pid, port, token, startedAt: new Date().toISOString(), version: tsyncVersion };
        await mkdir(dir, { recursive: true });
        const file = join(dir, statusFileName);
        await writeFile(`${file}.tmp`, JSON.stringify(address) + "\n", { mode: 0o600 });
        await rename(`${file}.tmp`, file);
        return { server, address, file };
      },
      catch: (e) => e,
    }),
    ({ server, address, file }) =>
      Effect.promise(async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        // Only our own file: a newer process of the same config may have written its own since.
        const current = await readFile(file, "utf8").then(
          (t) => JSON.parse(t) as unknown,
          () => undefined,
        );
        if (isAddress(current) && current.pid === address.pid && current.token === address.token) await rm(file, { force: true });
      }),
  ).pipe(Effect.map(({ address }) => address));

/** Why a status could not be had: no process runs, or the one that does did not answer. */
export type StatusReach =
  | { readonly kind: "ok"; readonly address: StatusAddress; readonly status: unknown }
  | { readonly kind: "notRunning"; readonly reason: string }
  | { readonly kind: "noAnswer"; readonly address: StatusAddress; readonly reason: string };

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists, under another user.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

/** Reads `<dir>/status.json` and asks the process it names for its status. */
export const askStatus = async (dir: string, timeoutMs = 5000): Promise<StatusReach> => {
  const file = join(dir, statusFileName);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { kind: "notRunning", reason: code === "ENOENT" ? `no ${file}` : `${file} cannot be read: ${(e as Error).message}` };
  }
  if (!isAddress(parsed)) return { kind: "notRunning", reason: `${file} is not a status file` };
  const address = parsed;
  // A process killed with -9 leaves its file behind; the pid tells.
  if (!alive(address.pid))
    return { kind: "notRunning", reason: `pid ${address.pid} of ${file} is gone (it was stopped without cleaning up)` };
  try {
    const res = await fetch(`http://127.0.0.1:${address.port}/status`, {
      headers: { authorization: `Bearer ${address.token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) return { kind: "noAnswer", address, reason: `HTTP ${res.status}` };
    return { kind: "ok", address, status: await res.json() };
  } catch (e) {
    return { kind: "noAnswer", address, reason: e instanceof Error ? e.message : String(e) };
  }
};
