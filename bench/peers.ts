// The alternatives users weigh tsync against, each run on the bench's data: raw NATS
// request/reply, the NATS object store, rsync to a daemon on loopback, and cp.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startNatsServer } from "../src/actors/natsServer.js";
import { listFiles } from "./data.js";
import { cpuOfAll, cpuSpent, RssWatch, run, start, tsxArgs, type CpuSeconds, type PeakRss } from "./procs.js";
import { repoRoot } from "./tsyncProcs.js";

export interface Measured {
  /** Seconds from the tool's first byte to its last, without process start-up where it has one. */
  readonly seconds: number;
  readonly rss: PeakRss;
  /** CPU seconds per process between the tool's first byte and its last, where measured. */
  readonly cpu?: CpuSeconds;
}

const child = (name: string) => join(repoRoot, "bench", "children", name);

/** A nats-server of its own for a peer, stopped afterwards; its peak RSS is reported too. */
const withServer = async <A>(dir: string, f: (url: string, rss: RssWatch) => Promise<A>): Promise<A> => {
  const server = await startNatsServer({ dir });
  const rss = new RssWatch(server.pid, () => "nats-server");
  try {
    return await f(server.url, rss);
  } finally {
    await rss.stop();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
};

/** Raw request/reply: a requester reading the files and a responder acking each chunk. */
export const rawNats = async (scratch: string, files: ReadonlyArray<string>, chunk: number, window: number): Promise<Measured> =>
  withServer(join(scratch, "raw-nats"), async (url, serverRss) => {
    const responder = start(process.execPath, tsxArgs(child("rawNats.ts"), ["responder", url, "bench.raw"]), { role: "responder" });
    try {
      await responder.line(/^ready$/m);
      const requester = start(
        process.execPath,
        tsxArgs(child("rawNats.ts"), ["requester", url, "bench.raw", String(chunk), String(window), ...files]),
        {
          role: "requester",
        },
      );
      await requester.line(/^ready$/m, 60_000);
      const watches = [requester.rss, responder.rss, serverRss];
      const before = await cpuOfAll(watches);
      const { match } = await requester.line(/^(\{.*\})$/m, 600_000);
      const cpu = cpuSpent(before, await cpuOfAll(watches));
      const e = await requester.exited;
      if (e.code !== 0) throw new Error(`raw requester failed:\n${requester.output()}`);
      const r = JSON.parse(match[1]!) as { ms: number };
      return {
        seconds: r.ms / 1000,
        rss: { ...(await requester.rss.stop()), ...(await responder.rss.stop()), ...(await serverRss.stop()) },
        cpu,
      };
    } finally {
      await responder.stop();
    }
  });

export interface ObjectStoreResult {
  readonly put: Measured;
  readonly get: Measured;
}

/** Object store put of every file under `root`, then get of each into `outDir`. */
export const objectStore = async (scratch: string, root: string, chunk: number): Promise<ObjectStoreResult> =>
  withServer(join(scratch, "object-store-nats"), async (url, serverRss) => {
    const list = join(scratch, "object-store-list.txt");
    await writeFile(list, (await listFiles(root)).join("\n") + "\n");
    const outDir = join(scratch, "object-store-out");
    try {
      const p = start(process.execPath, tsxArgs(child("objectStore.ts"), [url, String(chunk), root, outDir, list]), { role: "client" });
      const { match } = await p.line(/^(\{.*\})$/m, 1_200_000);
      const e = await p.exited;
      if (e.code !== 0) throw new Error(`object store client failed:\n${p.output()}`);
      const r = JSON.parse(match[1]!) as { putMs: number; getMs: number };
      const rss = { ...(await p.rss.stop()), ...(await serverRss.stop()) };
      return { put: { seconds: r.putMs / 1000, rss }, get: { seconds: r.getMs / 1000, rss } };
    } finally {
      await rm(outDir, { recursive: true, force: true });
      await rm(list, { force: true });
    }
  });

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });

export const rsyncAvailable = async (): Promise<boolean> =>
  run("rsync", ["--version"]).then(
    () => true,
    () => false,
  );

/**
 * rsync -a of `root` to an rsync daemon on loopback (it checksums every file it transfers; it does
 * not fsync). `via`, given the daemon's port, returns the port the client dials instead (a link
 * emulator in front of the daemon), started before the clock.
 */
export const rsync = async (scratch: string, root: string, via?: (daemonPort: number) => Promise<number>): Promise<Measured> => {
  const dir = join(scratch, "rsync");
  const dest = join(dir, "dest");
  await mkdir(dest, { recursive: true });
  const port = await freePort();
  const conf = join(dir, "rsyncd.conf");
  await writeFile(
    conf,
    `use chroot = no\npid file = ${join(dir, "rsyncd.pid")}\n[bench]\n  path = ${dest}\n  read only = false\n  uid = root\n  gid = root\n`,
  );
  const daemon = start(
    "rsync",
    ["--daemon", "--no-detach", `--config=${conf}`, `--port=${port}`, "--address=127.0.0.1", `--log-file=${join(dir, "rsyncd.log")}`],
    {
      role: "rsync daemon",
    },
  );
  try {
    for (let i = 0; ; i++) {
      const up = await run("rsync", [`rsync://127.0.0.1:${port}/`]).then(
        () => true,
        () => false,
      );
      if (up) break;
      if (i > 100) throw new Error(`rsync daemon did not start:\n${daemon.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const dial = via ? await via(port) : port;
    const r = await run("rsync", ["-a", `${root}/`, `rsync://127.0.0.1:${dial}/bench/`], { role: "rsync client" });
    // Every forked daemon process is labelled "rsync": the largest one is the daemon side's peak.
    const daemonRss = await daemon.rss.stop();
    return {
      seconds: r.ms / 1000,
      rss: { "rsync client": r.rss["rsync client"] ?? 0, "rsync daemon": Math.max(...Object.values(daemonRss)) },
    };
  } finally {
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  }
};

/** cp -a, then an fsync of every file it wrote: the durable local copy, the ceiling of any tool here. */
export const cp = async (scratch: string, root: string): Promise<Measured> => {
  const dest = join(scratch, "cp-dest");
  try {
    const t0 = performance.now();
    const r = await run("cp", ["-a", root, dest], { role: "cp" });
    // fsync of each file written (not syncfs, which would also flush whatever else is dirty).
    const files = (await listFiles(dest)).map((f) => join(dest, f));
    for (let i = 0; i < files.length; i += 500) await run("sync", files.slice(i, i + 500));
    return { seconds: (performance.now() - t0) / 1000, rss: r.rss };
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
};

/** `find DIR -type f`, the floor for any walk of a tree. */
export const find = async (root: string): Promise<Measured> => {
  const r = await run("find", [root, "-type", "f"], { role: "find" });
  return { seconds: r.ms / 1000, rss: r.rss };
};
