// Findings 2, 3, 4 and 9: the embedded nats-server is closed by default (enrolled senders only,
// each pinned to its own subjects and inbox), enrollment and revocation take effect on a running
// receiver, a white list that cannot be enforced stops start-up, address lookups stay bounded, and
// made-up sender ids cannot fill max_sessions.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Receiver } from "../../../src/actors/receiver/receiver.js";
import { senderRegistryPath } from "../../../src/actors/receiver/senderRegistry.js";
import { validateTsFile } from "../../../src/actors/receiver/validateTsFile.js";
import { Sender } from "../../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../../src/machines/senderTypes.js";
import { Code } from "../../../src/protocol/status.js";
import { helloSubject, senderInboxPrefix } from "../../../src/protocol/subjects.js";
import { runTsync } from "../../harness/cli.js";
import { receiverConfig, senderConfig } from "../../harness/configs.js";
import { startEnrolledReceiver, type EnrolledReceiver } from "../../harness/enroll.js";
import { startTestNatsServer, type TestNatsServer } from "../../harness/natsServer.js";
import { removeAll, tempRoot } from "../../harness/syncPair.js";
import { buildEdge, eventually, expectLandedByteForByte, helloBody, noAuth, rawClient, sayHello } from "../kit.js";

let root: string;
beforeAll(async () => {
  root = await tempRoot("tsync-enroll-");
});
afterAll(async () => {
  await removeAll(root);
});

/** Resolves with the error a subscription ends with (a permissions violation), or "open" if it stays open. */
const subscriptionRefusal = (nc: NatsConnection, subject: string): Promise<string> =>
  new Promise<string>((resolve) => {
    nc.subscribe(subject, { callback: (e) => resolve(e ? String(e) : "open: a message arrived") });
    void nc.flush().then(() => setTimeout(() => resolve("open"), 1_000));
  });

const senderFor = (r: EnrolledReceiver, group: string, id: string, edge: string) =>
  Sender.open({
    config: senderConfig({
      data_directory: edge,
      server_ip: "127.0.0.1",
      server_port: String(r.receiver.port),
      receiver_group: group,
      ...r.senders[id],
    }),
  });

describe("the default receiver's embedded server", () => {
  let r: EnrolledReceiver;
  beforeAll(async () => {
    r = await startEnrolledReceiver(root, "closed", ["plant-a", "mallory"]);
  });
  afterAll(async () => {
    await r.receiver.stop();
  });

  test("lets no stranger in: no credentials, an unenrolled key or a forged name are refused at connect", async () => {
    await expect(rawClient(r.url, "stranger")).rejects.toThrow(/Authorization Violation/);
    const seed = join(root, "unenrolled.nk");
    await writeFile(seed, new TextDecoder().decode(createUser().getSeed()));
    await expect(rawClient(r.url, "plant-a", { ...noAuth, nats_nkey_seed_file: seed })).rejects.toThrow(/Authorization Violation/);
    await expect(rawClient(r.url, "plant-a", { ...noAuth, nats_user: "receiver", nats_password: undefined })).rejects.toThrow(
      /Authorization Violation/,
    );
  });

  test("an enrolled sender reads nothing but its own inbox and reaches no $JS, $KV, $O or $SYS subject", async () => {
    const mallory = await rawClient(r.url, "mallory", r.as("mallory"));
    try {
      for (const tap of [">", "tsync.>", "_INBOX.>", "_tsync_inbox.>", `${senderInboxPrefix("plant-a")}.>`, "$SYS.>", "$JS.API.>", "$KV.>"])
        expect(await subscriptionRefusal(mallory, tap), tap).toMatch(/Permissions Violation for Subscription/);
      for (const subject of [
        "$JS.API.STREAM.CREATE.filler",
        "$JS.API.STREAM.LIST",
        "$KV.tsync-owners-closed.x",
        "$O.tsync.M.x",
        "$SYS.REQ.SERVER.PING.CONNZ",
        helloSubject("closed", "plant-a"),
        "tsync.closed.s.x.plant-a.y.offer",
      ])
        await expect(mallory.request(subject, "{}", { timeout: 5_000 }), subject).rejects.toThrow(/Permissions Violation for Publish/);
      // Its own inbox and its own hello work.
      expect(await subscriptionRefusal(mallory, `${senderInboxPrefix("mallory")}.mine.*`)).toBe("open");
      expect((await sayHello(mallory, "closed", "mallory")).code).toBe(Code.ok);
    } finally {
      await mallory.close();
    }
  });

  test("a sender cannot overhear or shadow another's session grant: plant-a's round succeeds while mallory tries", async () => {
    const mallory = await rawClient(r.url, "mallory", r.as("mallory"));
    const edge = join(root, "closed-edge");
    const files = await buildEdge(edge, ["root.a"], 2);
    const a = await senderFor(r, "closed", "plant-a", edge);
    try {
      expect(await subscriptionRefusal(mallory, `${senderInboxPrefix("plant-a")}.*.*`)).toMatch(/Permissions Violation/);
      const s = await a.runOnce();
      expect(roundSucceeded(s), JSON.stringify(s)).toBe(true);
      await expectLandedByteForByte(r.centre, files);
    } finally {
      await a.close();
      await mallory.close();
    }
  });

  test("made-up sender ids cannot fill max_sessions: their hellos never reach the receiver", async () => {
    const capped = await startEnrolledReceiver(root, "capped", ["plant-c", "mallory"], { max_sessions: "2" });
    const mallory = await rawClient(capped.url, "mallory", capped.as("mallory"));
    const c = await rawClient(capped.url, "plant-c", capped.as("plant-c"));
    try {
      for (let i = 0; i < 10; i++)
        await expect(
          mallory.request(helloSubject("capped", `made-up-${i}`), helloBody(`made-up-${i}`), { timeout: 5_000 }),
        ).rejects.toThrow(/Permissions Violation for Publish/);
      // Its own id claimed in the body of its own subject: refused, no session.
      expect((await sayHello(mallory, "capped", "mallory", { senderId: "made-up" })).code).toBe(Code.unauthorized);
      expect((await sayHello(mallory, "capped", "mallory")).code).toBe(Code.ok);
      expect((await sayHello(c, "capped", "plant-c")).code).toBe(Code.ok);
      expect(capped.receiver.openSessions.map((s) => s.input.senderId).sort()).toEqual(["mallory", "plant-c"]);
    } finally {
      await mallory.close();
      await c.close();
      await capped.receiver.stop();
    }
  });
});

test("tsync senders add, list and remove act on a running receiver: a new sender syncs within seconds; a removed one is cut off", async () => {
  const r = await startEnrolledReceiver(root, "live", []);
  const conf = join(root, "live.receiver.properties");
  await writeFile(conf, `receiver_data_directory=${r.centre}\nreceiver_group=live\nsync_server_port=${r.receiver.port}\n`);
  const credential = join(root, "plant-live.nk");
  const edge = join(root, "live-edge");
  const files = await buildEdge(edge, ["root.live"], 1);
  try {
    const added = await runTsync(["senders", "add", "plant-live", "--config", conf, "--out", credential]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/enrolled sender plant-live \(public key U[A-Z0-9]{55}\)/);
    expect((await readFile(credential, "utf8")).trim()).toMatch(/^SU[A-Z0-9]+$/);
    expect(JSON.parse(await readFile(senderRegistryPath(r.centre), "utf8")).senders[0].id).toBe("plant-live");
    // The running receiver reloads its server: the new sender is let in within 5 s.
    await eventually("the registry to be applied", () => r.logs.find((l) => l.includes("added plant-live")), 5_000);
    const sender = await Sender.open({
      config: senderConfig({
        data_directory: edge,
        server_ip: "127.0.0.1",
        server_port: String(r.receiver.port),
        receiver_group: "live",
        sender_name: "plant-live",
        nats_nkey_seed_file: credential,
      }),
    });
    try {
      expect(roundSucceeded(await sender.runOnce())).toBe(true);
      await expectLandedByteForByte(r.centre, files);
      const listed = await runTsync(["senders", "list", "--config", conf]);
      expect(listed.stdout).toMatch(/^plant-live\tU[A-Z0-9]{55}\tadded /m);

      // A live session, then removal: the session ends and the connection is refused from then on.
      const client = await rawClient(
        r.url,
        "plant-live",
        { ...noAuth, nats_nkey_seed_file: credential },
        { maxReconnectAttempts: -1, reconnectTimeWait: 200 },
      );
      expect((await sayHello(client, "live", "plant-live")).code).toBe(Code.ok);
      let disconnected = false;
      void (async () => {
        for await (const st of client.status()) if (st.type === "disconnect") disconnected = true;
      })();
      const removed = await runTsync(["senders", "remove", "plant-live", "--config", conf]);
      expect(removed.code, removed.stderr).toBe(0);
      await eventually("the session to end", () => (r.receiver.openSessions.length === 0 ? true : undefined), 5_000);
      await eventually("the server to drop the connection", () => (disconnected || client.isClosed() ? true : undefined), 5_000);
      await client.close();
      await expect(rawClient(r.url, "plant-live", { ...noAuth, nats_nkey_seed_file: credential })).rejects.toThrow(
        /Authorization Violation/,
      );
      expect((await runTsync(["senders", "list", "--config", conf])).stdout).toBe("no sender is enrolled\n");
    } finally {
      await sender.close();
    }
  } finally {
    await r.receiver.stop();
  }
}, 180_000);

test("embedded_server_open=true runs it open, and says at every start what that exposes", async () => {
  const logs: string[] = [];
  const receiver = await Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      sync_server_port: "0",
      embedded_server_open: "true",
      receiver_data_directory: join(root, "open-centre"),
    }),
    validateTsFile,
    log: (l) => void logs.push(l),
  });
  try {
    expect(logs.find((l) => l.startsWith("WARNING: embedded_server_open=true"))).toMatch(/read every sender's bytes, act as any sender/);
    const anyone = await rawClient(`127.0.0.1:${receiver.port}`, "anyone");
    await anyone.close();
  } finally {
    await receiver.stop();
  }
});

describe("a receiver on an external server without authentication", () => {
  let server: TestNatsServer;
  beforeAll(async () => {
    server = await startTestNatsServer();
  });
  afterAll(async () => {
    await server.cleanup();
  });

  test("refuses to start with an ip_white_list it could not enforce, and says why", async () => {
    const start = (ip_white_list: string) =>
      Receiver.start({
        config: receiverConfig({
          is_sync_enable: "true",
          receiver_group: "ext",
          nats_url: server.url,
          receiver_data_directory: join(root, "ext-centre"),
          ip_white_list,
        }),
        validateTsFile,
        log: () => undefined,
      });
    await expect(start("10.0.0.0/8")).rejects.toThrow(/ip_white_list=10\.0\.0\.0\/8 cannot be enforced on .*requires no authentication/);
    // Admitting every address is a choice it can honour.
    const open = await start("0.0.0.0/0, ::/0");
    await open.stop();
  });
});

test("address lookups stay bounded: a sender holding 50,000 subscriptions does not stop others' hellos", async () => {
  const r = await startEnrolledReceiver(root, "hog", ["plant-h", "hog"]);
  const hog = await rawClient(r.url, "hog", r.as("hog"));
  const edge = join(root, "hog-edge");
  const files = await buildEdge(edge, ["root.h"], 1);
  const sender = await senderFor(r, "hog", "plant-h", edge);
  try {
    const long = "x".repeat(200);
    for (let i = 0; i < 50_000; i++) hog.subscribe(`${senderInboxPrefix("hog")}.${long}.${i}`);
    await hog.flush();
    const s = await sender.runOnce();
    expect(roundSucceeded(s), JSON.stringify(s)).toBe(true);
    await expectLandedByteForByte(r.centre, files);
  } finally {
    await sender.close();
    await hog.close();
    await r.receiver.stop();
  }
}, 120_000);
