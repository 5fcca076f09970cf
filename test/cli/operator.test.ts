import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildSampleDataDir } from "../../src/actors/sampleDataDir.js";
import { generateTsFileToPath, inspectTsFile } from "../../src/actors/tsfileFiles.js";
import { commandGroups, commandSpecs } from "../../src/cli/commands.js";
import { usageLine, type Tables } from "../../src/cli/help.js";
import { receiverKeys } from "../../src/config/receiver.js";
import { senderKeys } from "../../src/config/sender.js";
import { serializeTsFileResource } from "../../src/tsfile/resource.js";
import { freePort, projectRoot, properties, runTsync, startTsync, tsyncBin } from "../harness/cli.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

// What an operator runs: `--help` on every command, `tsync status` against a running receiver and
// sender, JSON log lines, and the progress of `sender --once` under a pseudo-terminal and without one.

const script = ["/usr/bin/script", "/bin/script"].find((p) => existsSync(p));
if (!script && process.env["CI"] === "true") throw new Error("script is missing: bin/install-deps --tests installs it (bsdutils)");
if (!script) console.warn("skipping the pseudo-terminal progress test: script (util-linux) is missing");

/** A sealed TsFile of about `bytes` in storage group `sg` of `edge`, as IoTDB leaves one. */
const writeBigSealed = async (edge: string, sg: string, bytes: number): Promise<void> => {
  const dir = join(edge, "sequence", sg, "0", "0");
  await mkdir(dir, { recursive: true });
  const tsfile = join(dir, "1000-1-0-0.tsfile");
  await generateTsFileToPath(tsfile, { targetBytes: bytes, seed: 7 });
  const info = await inspectTsFile(tsfile);
  const resource = serializeTsFileResource({
    devices: info.devices.map((d) => ({ id: d.id, startTime: d.startTime ?? 0n, endTime: d.endTime ?? 0n })),
  });
  await writeFile(`${tsfile}.resource.temp`, resource);
  await rename(`${tsfile}.resource.temp`, `${tsfile}.resource`);
};

const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe("--help on every command", () => {
  test("every command and subcommand answers --help and -h on stdout with exit 0, listing its flags and the config keys it reads", async () => {
    const tables: Tables = { sender: senderKeys, receiver: receiverKeys };
    for (const spec of commandSpecs) {
      const words = spec.name.split(" ");
      const [long, short] = await Promise.all([runTsync([...words, "--help"]), runTsync([...words, "-h"])]);
      expect(long.code, `${spec.name} --help`).toBe(0);
      expect(short.stdout).toBe(long.stdout);
      expect(long.stdout).toContain(`Usage: ${usageLine(spec)}`);
      for (const name of Object.keys(spec.flags)) expect(long.stdout, `${spec.name} lists --${name}`).toContain(`--${name}`);
      for (const use of spec.config ?? []) {
        const keys = use.keys === "all" ? Object.keys(tables[use.file]) : use.keys;
        for (const key of keys) {
          expect(long.stdout, `${spec.name} lists ${key}`).toMatch(new RegExp(`^  ${key}[= ]`, "m"));
          // Descriptions come from the key table: its first words are shown under the key.
          expect(long.stdout).toContain(tables[use.file][key]!.description.split(" ").slice(0, 4).join(" "));
        }
      }
    }
    for (const group of Object.keys(commandGroups)) {
      const r = await runTsync([group, "--help"]);
      expect(r.code).toBe(0);
      for (const spec of commandSpecs.filter((s) => s.name.startsWith(`${group} `))) expect(r.stdout).toContain(usageLine(spec));
      expect((await runTsync([group])).code).toBe(2);
    }
  });

  test("usage mistakes exit 2 with a message on stderr naming the command", async () => {
    const cases: Array<[string[], string]> = [
      [["sender", "--bogus"], "tsync sender: Unknown option '--bogus'"],
      [["senders", "add", "plant-1"], "tsync senders add needs --out FILE"],
      [["senders", "frobnicate"], 'unknown subcommand "frobnicate"'],
      [["owners", "release"], "tsync owners release: missing GROUP"],
      [["catalog", "extra"], 'tsync catalog: unexpected argument "extra"'],
      [["nonsense"], 'tsync: unknown command "nonsense"'],
      [["status"], "name the ROLE"],
      [[], "Usage:"],
    ];
    for (const [args, message] of cases) {
      const r = await runTsync(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain(message);
    }
  });
});

describe("a running receiver and sender", () => {
  let root: string;
  let port: number;
  let receiverConf: string;
  let receiver: Awaited<ReturnType<typeof startTsync>> | undefined;
  const children: Array<{ kill: (s: NodeJS.Signals) => void }> = [];

  /** A sender enrolled as `id`, syncing `edge`, its properties written to `<id>.properties`. */
  const senderConf = async (id: string, edge: string, extra: Record<string, string> = {}): Promise<string> => {
    const credential = join(root, `${id}.nk`);
    const added = await runTsync(["senders", "add", id, "--config", receiverConf, "--out", credential]);
    expect(added.code).toBe(0);
    // The running receiver follows its registry by polling: the sender is let in once it says so.
    const applied = new RegExp(`sender registry applied: .*added (\\S+, )*${id}\\b`);
    await waitFor(`the receiver to let ${id} in`, async () => (applied.test(receiver!.output()) ? true : undefined));
    const conf = join(root, `${id}.properties`);
    await writeFile(
      conf,
      properties({
        data_directory: edge,
        server_port: String(port),
        sender_name: id,
        nats_nkey_seed_file: credential,
        // Slow enough that a round of a few MB lasts seconds: there is a round to look at.
        max_bandwidth_bytes_per_second: "1500000",
        ...extra,
      }),
    );
    return conf;
  };

  beforeAll(async () => {
    root = await tempRoot("tsync-operator-");
    port = await freePort();
    receiverConf = join(root, "receiver.properties");
    await writeFile(
      receiverConf,
      properties({
        is_sync_enable: "true",
        sync_server_port: String(port),
        receiver_data_directory: join(root, "centre"),
        log_format: "json",
      }),
    );
    receiver = await startTsync(["receiver", "--config", receiverConf], /sync service started/);
    children.push(receiver.child);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    await removeAll(root);
  });

  test("tsync status reads a forever sender's round, then its last and next rounds; the receiver's sessions and per-sender totals; both log JSON lines", async () => {
    const edge = join(root, "edge-1");
    const sample = (await buildSampleDataDir(edge)).filter((f) => f.sealed);
    await writeBigSealed(edge, "root.big", 6 * 2 ** 20);
    const conf = await senderConf("plant-1", edge, { log_format: "json", sync_period_in_second: "600" });
    const sender = await startTsync(["sender", "--config", conf], /"message":"sender plant-1 for /);
    children.push(sender.child);
    const status = async (...args: string[]) => {
      const r = await runTsync(["status", ...args, "--json"]);
      return { code: r.code, body: JSON.parse(r.stdout) as Record<string, unknown> & { running: boolean } };
    };

    const during = await waitFor("a round in progress", async () => {
      const s = await status("--config", conf);
      const round = s.body["round"] as { file?: { name: string; done: number } } | undefined;
      return round?.file?.name.includes("root.big") ? s : undefined;
    });
    expect(during.code).toBe(0);
    expect(during.body).toMatchObject({ running: true, role: "sender", sender: "plant-1", state: "syncing" });
    expect(during.body["nextRoundAt"]).toBeUndefined();
    expect(during.body["pending"]).toMatchObject({ asOf: "this round" });
    expect((during.body["pending"] as { bytes: number }).bytes).toBeGreaterThan(0);

    const after = await waitFor("the first round's end", async () => {
      const s = await status("sender", "--config", conf);
      return s.body["lastRound"] ? s : undefined;
    });
    expect(after.code).toBe(0);
    expect(after.body).toMatchObject({
      state: "waiting",
      rounds: 1,
      lastRound: { ok: true, sent: sample.length + 1, failed: 0, conflicts: 0 },
      pending: { files: 0, bytes: 0, asOf: "last round" },
      quarantined: [],
      conflicts: [],
    });
    const next = Date.parse(String(after.body["nextRoundAt"]));
    expect(next).toBeGreaterThan(Date.now() + 500_000);

    const text = await runTsync(["status", "sender", "--config", conf]);
    expect(text.stdout).toMatch(/last round ok at .*: \d+ sent/);
    expect(text.stdout).toContain("next round: ");

    const centre = await status("receiver", "--config", receiverConf);
    expect(centre.code).toBe(0);
    expect(centre.body).toMatchObject({ role: "receiver", syncEnabled: true });
    const totals = (centre.body["senders"] as Record<string, { loaded: number; bytes: number }>)["plant-1"];
    expect(totals?.loaded).toBe(sample.length + 1);
    expect(totals?.bytes).toBeGreaterThan(6 * 2 ** 20);
    const sessions = centre.body["sessions"] as ReadonlyArray<{ sender: string }>;
    expect(sessions.every((s) => s.sender === "plant-1")).toBe(true);

    // SIGTERM: a graceful stop, exit 0, and the status file goes with the process.
    const exited = new Promise<number | null>((r) => sender.child.once("exit", r));
    sender.child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const gone = await status("sender", "--config", conf);
    expect(gone).toMatchObject({ code: 3, body: { running: false } });

    for (const [who, out] of [
      ["sender", sender.output()],
      ["receiver", receiver!.output()],
    ] as const) {
      const lines = out.trimEnd().split("\n");
      expect(lines.length).toBeGreaterThan(1);
      for (const line of lines) {
        const event = JSON.parse(line) as Record<string, unknown>;
        expect(event).toMatchObject({ process: who, level: expect.stringMatching(/^(debug|info|warn|error)$/) });
        expect(typeof event["message"]).toBe("string");
        expect(Number.isNaN(Date.parse(String(event["time"])))).toBe(false);
        if (who === "sender") expect(event["sender"]).toBe("plant-1");
      }
    }
  }, 120_000);

  test.runIf(script !== undefined)(
    "sender --once in a pseudo-terminal rewrites one progress line (file, bytes, rate, ETA) and erases it before the summary",
    async () => {
      const edge = join(root, "edge-2");
      await writeBigSealed(edge, "root.tty", 6 * 2 ** 20);
      const conf = await senderConf("plant-2", edge);
      // script runs the command on a pseudo-terminal and copies what it shows to our pipe.
      const command = `${process.execPath} ${tsyncBin} sender --config ${conf} --once`;
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(script!, ["-qfec", command, "/dev/null"], { cwd: projectRoot, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        child.stdout.on("data", (b: Buffer) => (out += b.toString()));
        child.on("exit", (code) => resolve({ code, out }));
      });
      expect(r.code, r.out).toBe(0);
      // Frames: carriage return, the line, erase to the end of the line; never a line feed between them.
      const frames = [...r.out.matchAll(/\r(file [^\r\n]*?)\u001b\[K/g)].map((m) => m[1]!);
      expect(frames.length, r.out).toBeGreaterThan(2);
      const withEta = frames.filter((f) => /^file 1\/1 root\.tty\/0\/0\/1000-1-0-0\.tsfile .*total .*\(\d+%\), .*\/s, ETA /.test(f));
      expect(withEta.length, frames.join("\n")).toBeGreaterThan(0);
      // Progress moves: the frames do not all say the same.
      expect(new Set(frames).size).toBeGreaterThan(1);
      // The summary starts on a clean line: the last frame is erased first.
      expect(r.out).toMatch(/\r\u001b\[Kround ok: 1 file\(s\) sent/);
    },
    60_000,
  );

  test("sender --once without a terminal writes plain progress log lines every few seconds, no carriage returns", async () => {
    const edge = join(root, "edge-3");
    await writeBigSealed(edge, "root.pipe", 8 * 2 ** 20);
    const conf = await senderConf("plant-3", edge);
    const r = await runTsync(["sender", "--config", conf, "--once"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toContain("\r");
    expect(r.stdout).toMatch(/^\S+Z INFO  sender: progress: file 1\/1 root\.pipe\/\S+ .*total .*\/s, ETA /m);
    expect(r.stdout).toContain("round ok: 1 file(s) sent");
  }, 60_000);
});

test("a JSON log line escapes what could end or disguise a line, and parses back to the same text", async () => {
  const { jsonLine } = await import("../../src/cli/log.js");
  const nasty = "a\nb\r\u001b[2K\u0085\u2028\u202e\u007f\u009bz";
  const line = jsonLine({ message: nasty });
  expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/);
  expect(JSON.parse(line)).toEqual({ message: nasty });
});
