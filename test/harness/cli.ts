import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("../../", import.meta.url));
export const tsyncBin = fileURLToPath(new URL("../../bin/tsync.js", import.meta.url));

/** A free loopback port: bound by us, then released for a server to take. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** A properties file's text, one `key=value` line per entry. */
export const properties = (p: Readonly<Record<string, string>>): string =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n") + "\n";

export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tsync ...` as a child process to its end. */
export const runTsync = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsyncBin, ...args], {
      cwd: projectRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tsync ${args.join(" ")} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });

/** A long-running `tsync ...` child; resolves once a line matching `ready` was printed. */
export const startTsync = async (
  args: ReadonlyArray<string>,
  ready: RegExp,
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<{ child: ChildProcess; output: () => string; match: RegExpMatchArray }> => {
  const child = spawn(process.execPath, [tsyncBin, ...args], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no line matching ${ready} within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve({ child, output: () => out, match: m });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tsync ${args.join(" ")} exited with ${code} before it was ready:\n${out}`));
    });
  });
};
