// Stately's inspector: `tsync inspector` relays what processes with stately_inspect_url send to
// the page's socket (here a test client standing in for the browser page), and a process whose
// inspector is away syncs as usual.
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { WebSocket } from "ws";
import { buildSampleDataDir, demoLayout } from "../../src/actors/sampleDataDir.js";
import { freePort, properties, runTsync, startTsync } from "../harness/cli.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

const eventually = async <T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe("Stately's inspector", () => {
  let root: string;
  let receiverConf: string;
  let serverPort: number;
  let inspectorPort: number;
  const children: Array<{ kill: (s: NodeJS.Signals) => void }> = [];
  let receiver: Awaited<ReturnType<typeof startTsync>>;

  /** An enrolled sender of `edge`, its properties written next to its credential. */
  const senderConf = async (id: string, edge: string, extra: Record<string, string>): Promise<string> => {
    // Each sender its own storage groups: a shared one would be refused as a conflict.
    const layout = { ...demoLayout, groups: { [`root.${id.replace("-", "_")}`]: ["line1.press", "line2.oven"] } };
    const credential = join(root, `${id}.nk`);
    expect((await runTsync(["senders", "add", id, "--config", receiverConf, "--out", credential])).code).toBe(0);
    const applied = new RegExp(`sender registry applied: .*added (\\S+, )*${id}\\b`);
    await eventually(`the receiver to let ${id} in`, () => (applied.test(receiver.output()) ? true : undefined));
    await buildSampleDataDir(edge, layout);
    const conf = join(root, `${id}.properties`);
    await writeFile(
      conf,
      properties({ data_directory: edge, server_port: String(serverPort), sender_name: id, nats_nkey_seed_file: credential, ...extra }),
    );
    return conf;
  };

  beforeAll(async () => {
    root = await tempRoot("tsync-stately-");
    [serverPort, inspectorPort] = [await freePort(), await freePort()];
    receiverConf = join(root, "receiver.properties");
    await writeFile(
      receiverConf,
      properties({
        is_sync_enable: "true",
        sync_server_port: String(serverPort),
        receiver_data_directory: join(root, "centre"),
        stately_inspect_url: `ws://127.0.0.1:${inspectorPort}`,
      }),
    );
    receiver = await startTsync(["receiver", "--config", receiverConf], /sync service started/);
    children.push(receiver.child);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    await removeAll(root);
  });

  test("tsync inspector relays the receiver's and a sender's actors to the page, bytes as their length; SIGTERM ends it", async () => {
    const inspector = await startTsync(
      ["inspector", "--no-open", "--port", String(inspectorPort)],
      /Stately inspector at http:\/\/127\.0\.0\.1:/,
    );
    children.push(inspector.child);
    const page = new WebSocket(`ws://127.0.0.1:${inspectorPort}`);
    const seen: string[] = [];
    page.on("message", (data: Buffer) => seen.push(data.toString()));
    await once(page, "open");

    const conf = await senderConf("plant-1", join(root, "edge-1"), { stately_inspect_url: `ws://127.0.0.1:${inspectorPort}` });
    const round = await runTsync(["sender", "--config", conf, "--once"]);
    expect(round.code, round.stdout + round.stderr).toBe(0);

    type Message = { type: string; name?: string; event?: { type?: string } };
    const actorsOf = () =>
      new Set(seen.map((m) => JSON.parse(m) as Message).flatMap((m) => (m.type === "@xstate.actor" && m.name ? [m.name] : [])));
    // The receiver's socket reconnects on a timer once the inspector is up, so its session may come a little later.
    // The sender's round and the receiver's session with its put children, states drawn as actors.
    await eventually("both sides' machines", () => {
      const names = [...actorsOf()];
      const has = (re: RegExp) => names.some((n) => re.test(n));
      return has(/^senderRound$/) && has(/^session-/) && has(/receiverSession\./) && has(/^put-\d+$/) ? names : undefined;
    });
    const messages = seen.map((m) => JSON.parse(m) as Message);
    expect(messages.some((m) => m.type === "@xstate.snapshot")).toBe(true);
    expect(messages.some((m) => m.type === "@xstate.event" && m.event?.type === "put")).toBe(true);
    // A put carries its files' bytes: the inspector gets their length, not the bytes as JSON numbers.
    expect(seen.some((m) => /"bytes":\{"bytes":\d+\}/.test(m))).toBe(true);
    expect(Math.max(...seen.map((m) => m.length))).toBeLessThan(64 * 1024);

    page.close();
    inspector.child.kill("SIGTERM");
    const [code] = (await once(inspector.child, "exit")) as [number | null];
    expect(code).toBe(0);
  }, 120_000);

  test("a sender whose inspector is away syncs as usual, exits, and says so once", async () => {
    const away = await freePort();
    const conf = await senderConf("plant-2", join(root, "edge-2"), { stately_inspect_url: `ws://127.0.0.1:${away}` });
    const round = await runTsync(["sender", "--config", conf, "--once"]);
    expect(round.code, round.stdout + round.stderr).toBe(0);
    const warnings = (round.stdout + round.stderr).match(/stately_inspect_url ws:\/\/127\.0\.0\.1:\d+: .*trying again every 5 s/g) ?? [];
    expect(warnings).toHaveLength(1);
  }, 120_000);
});
