// The ownership registry on a real JetStream KV: any storage-group name the protocol admits maps
// to its own valid key, and create-if-absent gives a group to exactly one of racing claimants.
import { fc, test } from "@fast-check/vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { ownerKey, ownersBucket, OwnershipRegistry, RegistryUnavailable } from "../../src/actors/receiver/ownership.js";
import { forSender } from "../../src/actors/receiver/safeFailure.js";
import { isSegment } from "../../src/protocol/names.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { rawClient } from "../security/kit.js";

const groupName = fc
  .oneof(
    fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/),
    fc.string({ unit: fc.constantFrom(..."aé東ß.-_9Ω.."), minLength: 1, maxLength: 30 }),
    fc.constantFrom("root.sg1", ".hidden", "trailing.", "a..b", "...x", "=3d", "é", "root.工厂"),
  )
  .filter(isSegment);

// NATS KV keys: these characters, in tokens separated by single dots.
const validKvKey = /^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$/;

test.prop([groupName])("every storage-group name maps to a valid KV key", (sg) => {
  expect(ownerKey(sg)).toMatch(validKvKey);
});

test.prop([groupName, groupName])("different storage groups never share a key", (a, b) => {
  fc.pre(a !== b);
  expect(ownerKey(a)).not.toBe(ownerKey(b));
});

let server: TestNatsServer;
let nc: NatsConnection;
let registry: OwnershipRegistry;
beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await rawClient(server.url, "registry-test");
  registry = await OwnershipRegistry.open(nc, "registry");
});
afterAll(async () => {
  await nc.close();
  await server.cleanup();
});

test.prop([groupName, fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,8}$/), { minLength: 1, maxLength: 6 })], { numRuns: 30 })(
  "of racing claimants exactly one owns the group and every claimant is told that one; a release lets exactly one next claimant win",
  async (sg, claimants) => {
    await registry.release(sg);
    const answers = await Promise.all(claimants.map((id) => registry.claim(sg, id)));
    const owners = new Set(answers.map((o) => o.senderId));
    expect(owners.size).toBe(1);
    const [owner] = owners;
    expect(claimants).toContain(owner);
    expect(answers.every((o) => o.sg === sg)).toBe(true);
    expect((await registry.owner(sg))?.senderId).toBe(owner);
    expect((await registry.list()).find((o) => o.sg === sg)?.senderId).toBe(owner);

    expect(await registry.release(sg)).toBe(true);
    expect(await registry.owner(sg)).toBeUndefined();
    const next = await Promise.all(claimants.map((id) => registry.claim(sg, `${id}-next`)));
    expect(new Set(next.map((o) => o.senderId)).size).toBe(1);
  },
);

test("every read of the registry goes to its stream's leader: direct gets are off, also on a bucket made with them on", async () => {
  const group = "direct-before";
  await new Kvm(nc).create(ownersBucket(group), { history: 1, allow_direct: true });
  const jsm = await jetstreamManager(nc);
  expect((await jsm.streams.info(`KV_${ownersBucket(group)}`)).config.allow_direct).toBe(true);
  const r = await OwnershipRegistry.open(nc, group, 1);
  expect((await jsm.streams.info(`KV_${ownersBucket(group)}`)).config.allow_direct).toBe(false);
  expect((await r.claim("root.a", "s1")).senderId).toBe("s1");
  expect((await r.owner("root.a"))?.senderId).toBe("s1");
});

test("a registry that cannot reach JetStream says so in words a sender may see, and the failure passes to the sender as it is", async () => {
  const other = await rawClient(server.url, "registry-gone");
  const r = await OwnershipRegistry.open(other, "registry");
  await other.close();
  const failure = await r.claim("root.gone", "s1").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(failure).toBeInstanceOf(RegistryUnavailable);
  expect(String(failure)).toContain("the storage-group ownership registry cannot answer now");
  expect(forSender("offer", failure)).toBe(failure);
});
