// The ownership registry on a real JetStream KV: any storage-group name the protocol admits maps
// to its own valid key, and create-if-absent gives a group to exactly one of racing claimants.
import { fc, test } from "@fast-check/vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect } from "vitest";
import { ownerKey, OwnershipRegistry } from "../../src/actors/receiver/ownership.js";
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
