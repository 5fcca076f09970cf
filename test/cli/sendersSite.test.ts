// `tsync senders site`: the hub's user for an edge site's leaf node (test/cluster/leafEdges.test.ts
// runs a hub with the users it prints).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { properties, runTsync } from "../harness/cli.js";

let dir: string;
let conf: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsync-site-"));
  conf = join(dir, "receiver.properties");
  await writeFile(conf, properties({ receiver_group: "plant", receiver_data_directory: join(dir, "data") }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("prints the site's hub user with every subject of its senders and nothing else, and the lines for the site and the receivers", async () => {
  const ran = await runTsync(["senders", "site", "north", "--senders", "a1, a2", "--config", conf]);
  expect(ran.code, ran.stderr).toBe(0);
  const user = ran.stdout.split("\n").find((l) => l.startsWith('{ user: "north"'));
  expect(user).toBe(
    '{ user: "north", password: "<choose one>", permissions: { publish: { allow: ["tsync.plant.hello.a1", "tsync.plant.s.*.a1.>", "tsync.plant.fleet.a1", "tsync.plant.hello.a2", "tsync.plant.s.*.a2.>", "tsync.plant.fleet.a2"] }, subscribe: { allow: ["_tsync_inbox.a1.>", "_tsync_inbox.a2.>"] } } }',
  );
  expect(ran.stdout).toContain("nats-leaf://north:<that password>@<hub node>:7422");
  expect(ran.stdout).toContain("admit_leaf_nodes=true");
});

test("a site or sender id that is no id, or no sender at all, exits 2 naming it; nothing is printed", async () => {
  for (const [site, senders, said] of [
    ["../x", "a1", /"\.\.\/x" is not an id/],
    ["north", "a1,b c", /"b c" is not an id/],
    ["north", " , ", /--senders names no sender/],
  ] as const) {
    const ran = await runTsync(["senders", "site", site, "--senders", senders, "--config", conf]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(said);
    expect(ran.stdout).toBe("");
  }
});
