// ip_white_list is checked against the address the NATS server saw for the sender's connection,
// never one the sender claims. Real servers listening on IPv4, IPv6 and a non-loopback address,
// each with authentication and per-sender permissions: on a server without authentication the
// receiver refuses to start with a white list it could not enforce.
import { mkdtemp, rm } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { Redacted } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { NatsClientSettings } from "../../src/actors/natsConnect.js";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { Code } from "../../src/protocol/status.js";
import { helloSubject, senderInboxPrefix } from "../../src/protocol/subjects.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { startAuthNatsServer, type AuthNatsServer } from "../harness/authServer.js";
import { listFiles, removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";
import { buildEdge, eventually, expectLandedByteForByte, helloBody, noAuth, rawClient, sayHello, type AnyReply } from "./kit.js";

const asSender = (server: AuthNatsServer, id: string): NatsClientSettings => {
  const p = server.senderProps(id);
  return { ...noAuth, nats_user: p["nats_user"], nats_password: Redacted.make(p["nats_password"] ?? "") };
};

const senderIds = ["disabled-edge", "empty-edge", "default-edge", "listed-edge", "liar-edge", "liar1", "liar2", "shadowed", "shadow"];

describe("one server on 127.0.0.1", () => {
  let server: AuthNatsServer;
  let root: string;
  beforeAll(async () => {
    server = await startAuthNatsServer(senderIds);
    root = await tempRoot("tsync-whitelist-");
  });
  afterAll(async () => {
    await server.cleanup();
    await removeAll(root);
  });

  /** A receiver of its own group with these properties, and a sender of a fresh edge dir for it. */
  const pair = async (name: string, props: Record<string, string>) => {
    const centre = join(root, `${name}-centre`);
    const edge = join(root, `${name}-edge`);
    const files = await buildEdge(edge, [`root.${name}`], 1);
    const receiver = await startReceiver(server, centre, { receiver_group: name, ...server.receiverProps, ...props });
    const sender = await Sender.open({
      config: senderConfig({ data_directory: edge, receiver_group: name, ...server.senderProps(`${name}-edge`) }),
    });
    return {
      centre,
      files,
      receiver,
      sender,
      close: async () => {
        await sender.close();
        await receiver.stop();
      },
    };
  };

  test("is_sync_enable=false refuses every sender with a reason, and nothing is written", async () => {
    const p = await pair("disabled", { is_sync_enable: "false" });
    try {
      const s = await p.sender.runOnce();
      expect(s.roundError).toMatch(/is_sync_enable=false/);
      expect(s.sent).toEqual([]);
      expect(await listFiles(p.centre)).toEqual([]);
      expect(p.receiver.core.stats.sessionsOpened).toBe(0);
    } finally {
      await p.close();
    }
  });

  test("an empty ip_white_list admits nobody", async () => {
    const p = await pair("empty", { ip_white_list: "" });
    try {
      const s = await p.sender.runOnce();
      expect(s.roundError).toMatch(/sender address 127\.0\.0\.1 is not in ip_white_list \(empty: nobody\)/);
      expect(await listFiles(p.centre)).toEqual([]);
    } finally {
      await p.close();
    }
  });

  test("the default 0.0.0.0/0 admits an IPv4 sender; a list that names its network does too", async () => {
    for (const [name, props] of [
      ["default", {}],
      ["listed", { ip_white_list: "10.0.0.0/8, 127.0.0.0/8, fd00::/8" }],
    ] as const) {
      const p = await pair(name, props);
      try {
        const s = await p.sender.runOnce();
        expect(roundSucceeded(s), JSON.stringify(s)).toBe(true);
        await expectLandedByteForByte(p.centre, p.files);
        expect(p.receiver.openSessions).toEqual([]);
      } finally {
        await p.close();
      }
    }
  });

  test("a sender that claims a listed address (in its hello, or as its connection name) is refused with the address the server saw", async () => {
    const p = await pair("liar", { ip_white_list: "10.9.9.9/32" });
    const claimsInHello = await rawClient(server.url, "liar1", asSender(server, "liar1"));
    const namedAsIp = await rawClient(server.url, "liar2", asSender(server, "liar2"), { name: "10.9.9.9" });
    try {
      const r1 = await sayHello(claimsInHello, "liar", "liar1", { address: "10.9.9.9", senderName: "10.9.9.9" });
      expect(r1.code).toBe(Code.addressNotAllowed);
      expect(r1.message).toBe("sender address 127.0.0.1 is not in ip_white_list (10.9.9.9/32)");
      const r2 = await sayHello(namedAsIp, "liar", "liar2");
      expect(r2.code).toBe(Code.addressNotAllowed);
      // A connection not named as the sender's is no suspect at all: its address is never taken.
      expect(r2.message).toBe(
        "the NATS server knows no connection named tsync-sender-liar2 (as sender liar2's must be) that holds this request's reply inbox",
      );
      // The real sender fares no better, and the round says why.
      const s = await p.sender.runOnce();
      expect(s.roundError).toMatch(/127\.0\.0\.1 is not in ip_white_list/);
      expect(await listFiles(p.centre)).toEqual([]);
      expect(p.receiver.core.stats.sessionsOpened).toBe(0);
      expect(p.receiver.core.stats.refused).toBe(3);
    } finally {
      await claimsInHello.close();
      await namedAsIp.close();
      await p.close();
    }
  });

  test("another sender cannot shadow a sender's inbox: the server refuses the subscription, and the sender's hello is admitted", async () => {
    const centre = join(root, "shadow-centre");
    const receiver = await startReceiver(server, centre, { receiver_group: "shadow", ...server.receiverProps });
    const sender = await rawClient(server.url, "shadowed", asSender(server, "shadowed"));
    const shadow = await rawClient(server.url, "shadow", asSender(server, "shadow"));
    try {
      const answers: AnyReply[] = [];
      sender.subscribe(`${senderInboxPrefix("shadowed")}.x.*`, { callback: (_e, m) => void answers.push(m.json<AnyReply>()) });
      const refused = new Promise<string>((resolve) => {
        shadow.subscribe(`${senderInboxPrefix("shadowed")}.x.*`, { callback: (e) => resolve(String(e)) });
      });
      await sender.flush();
      expect(await refused).toMatch(/Permissions Violation for Subscription/);
      sender.publish(helloSubject("shadow", "shadowed"), helloBody("shadowed"), { reply: `${senderInboxPrefix("shadowed")}.x.1` });
      const [answer] = await eventually("the answer", () => (answers.length > 0 ? answers : undefined));
      expect(answer?.code, answer?.message).toBe(Code.ok);
      expect(receiver.core.stats.sessionsOpened).toBe(1);
    } finally {
      await sender.close();
      await shadow.close();
      await receiver.stop();
    }
  });
});

const roundSenders = ["v6default", "v6listed", "outsideRefused", "outsideAdmitted"];

/** A server of our own on `host`, for the address tests (the harness server listens on 127.0.0.1). */
const serverOn = async (host: string): Promise<{ server: AuthNatsServer; cleanup: () => Promise<void> }> => {
  const server = await startAuthNatsServer(roundSenders, host);
  return { server, cleanup: server.cleanup };
};

/** A round from `serverUrl` (how the sender reaches the server decides the address it is seen from). */
const roundVia = async (s: AuthNatsServer, serverUrl: string, root: string, name: string, whiteList: string) => {
  const centre = join(root, `${name}-centre`);
  const edge = join(root, `${name}-edge`);
  const files = await buildEdge(edge, [`root.${name}`], 1);
  const receiver = await Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      receiver_group: name,
      receiver_data_directory: centre,
      ...s.receiverProps,
      ip_white_list: whiteList,
    }),
    validateTsFile,
    log: () => undefined,
  });
  const sender = await Sender.open({
    config: senderConfig({ data_directory: edge, receiver_group: name, ...s.senderProps(name), nats_url: serverUrl }),
  });
  try {
    return { summary: await sender.runOnce(), centre, files };
  } finally {
    await sender.close();
    await receiver.stop();
  }
};

describe("a sender on IPv6 loopback (server listening on ::)", () => {
  let s: Awaited<ReturnType<typeof serverOn>>;
  let root: string;
  beforeAll(async () => {
    s = await serverOn("::");
    root = await tempRoot("tsync-ipv6-");
  });
  afterAll(async () => {
    await s.cleanup();
    await removeAll(root);
  });

  test("is refused by the default 0.0.0.0/0", async () => {
    const r = await roundVia(s.server, `[::1]:${s.server.port}`, root, "v6default", "0.0.0.0/0");
    expect(r.summary.roundError).toMatch(/sender address ::1 is not in ip_white_list \(0\.0\.0\.0\/0\)/);
    expect(await listFiles(r.centre)).toEqual([]);
  });

  test("is admitted by ::1/128", async () => {
    const r = await roundVia(s.server, `[::1]:${s.server.port}`, root, "v6listed", "::1/128");
    expect(roundSucceeded(r.summary), JSON.stringify(r.summary)).toBe(true);
    await expectLandedByteForByte(r.centre, r.files);
  });
});

const outsideAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === "IPv4" && !i.internal)?.address;

describe.skipIf(outsideAddress === undefined)(`a sender reaching the server through ${outsideAddress ?? "a non-loopback address"}`, () => {
  let s: Awaited<ReturnType<typeof serverOn>>;
  let root: string;
  beforeAll(async () => {
    s = await serverOn("0.0.0.0");
    root = await tempRoot("tsync-ipv4-");
  });
  afterAll(async () => {
    await s.cleanup();
    await removeAll(root);
  });

  test("is seen from that address: refused by 127.0.0.0/8, admitted by its /32", async () => {
    const address = outsideAddress!;
    const refused = await roundVia(s.server, `${address}:${s.server.port}`, root, "outsideRefused", "127.0.0.0/8");
    expect(refused.summary.roundError).toContain(`sender address ${address} is not in ip_white_list (127.0.0.0/8)`);
    const admitted = await roundVia(s.server, `${address}:${s.server.port}`, root, "outsideAdmitted", `${address}/32`);
    expect(roundSucceeded(admitted.summary), JSON.stringify(admitted.summary)).toBe(true);
    await expectLandedByteForByte(admitted.centre, admitted.files);
  });
});
