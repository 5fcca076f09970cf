// Model-based: random interleavings of senders offering files in overlapping storage groups,
// races of several senders on one group, releases and receiver restarts, run against a real
// receiver and the real registry on a real nats-server, checked against a model after each step.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect } from "vitest";
import { OwnershipRegistry } from "../../src/actors/receiver/ownership.js";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { SenderLink } from "../../src/actors/sender/link.js";
import { isStepFailure, type SessionInfo, type StepFailure } from "../../src/machines/senderTypes.js";
import type { FileRef } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";
import { receiverConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { listFiles, removeAll, tempRoot } from "../harness/syncPair.js";
import { rawClient } from "../security/kit.js";

const senders = ["s0", "s1", "s2"] as const;
const groups = ["root.g0", "root.g1", "root.g2"] as const;
type SenderId = (typeof senders)[number];
type Group = (typeof groups)[number];

interface Model {
  /** Group → its owner: the first sender whose offer of it was answered. */
  readonly owners: Map<Group, SenderId>;
  /** Files the storage must hold (`sg/vg/tp/name`), each loaded while its sender owned the group. */
  readonly loaded: Set<string>;
}

interface Client {
  readonly nc: NatsConnection;
  readonly link: SenderLink;
  session: SessionInfo | undefined;
}

interface Real {
  readonly root: string;
  readonly centre: string;
  readonly group: string;
  receiver: Receiver;
  readonly clients: Map<SenderId, Client>;
  readonly registry: OwnershipRegistry;
  readonly admin: NatsConnection;
  files: number;
}

let server: TestNatsServer;
let top: string;
let runs = 0;
beforeAll(async () => {
  server = await startTestNatsServer();
  top = await tempRoot("tsync-model-");
});
afterAll(async () => {
  await server.cleanup();
  await removeAll(top);
});

const startReceiver = (r: { centre: string; group: string }) =>
  Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      receiver_group: r.group,
      receiver_data_directory: r.centre,
      nats_url: server.url,
      nats_monitor_url: server.monitorUrl,
    }),
    // The content check is our seam: these files are random bytes, the ownership rules are what is tested.
    validateTsFile: async () => ({ ok: true, facts: { devices: [], version: 3 } }),
    log: () => undefined,
  });

const refKey = (r: FileRef) => `${r.sg}/${r.vg}/${r.tp}/${r.name}`;

type Outcome =
  | { readonly kind: "loaded"; readonly ref: FileRef }
  | { readonly kind: "refused"; readonly failure: Extract<StepFailure, { kind: "conflict" }> };

/** Offers one new file of `sg` as `id`, through the sender's own protocol code, to its load. */
const offerNewFile = async (real: Real, id: SenderId, sg: Group, size: number): Promise<Outcome> => {
  const n = ++real.files;
  const ref: FileRef = { sg, vg: "0", tp: "0", name: `${1_000_000 + n}-${n}-0-0.tsfile` };
  const dir = join(real.root, "edges", id);
  await mkdir(dir, { recursive: true });
  const path = join(dir, ref.name);
  const bytes = new Uint8Array(size).map((_, i) => (i * 31 + n) % 251);
  await writeFile(path, bytes);
  const client = real.clients.get(id)!;
  for (let attempt = 0; ; attempt++) {
    try {
      client.session ??= await client.link.hello([sg]);
      const sent = await client.link.sendPart(client.session, ref, { kind: "tsfile", path, size, mtimeMs: 0 });
      if (!sent.had) await client.link.commit(client.session, sent);
      await client.link.load(client.session, ref, [{ kind: "tsfile", size, sha256: sent.sha256 }]);
      expect(sent.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
      return { kind: "loaded", ref };
    } catch (e) {
      if (!isStepFailure(e)) throw e;
      // The receiver restarted since this sender's hello: say hello again, as a round would.
      if (e.kind === "sessionLost" && attempt === 0) {
        client.session = undefined;
        continue;
      }
      if (e.kind === "conflict") return { kind: "refused", failure: e };
      throw new Error(`${id} offering ${refKey(ref)}: ${e.kind} ${e.code} ${e.message}`);
    }
  }
};

const expectConflict = (o: Outcome, owner: SenderId, sg: Group) => {
  expect(o.kind).toBe("refused");
  if (o.kind !== "refused") return;
  expect(o.failure.code).toBe(Code.conflict);
  expect(o.failure.owner).toBe(owner);
  expect(o.failure.message).toContain(`storage group ${sg} belongs to sender ${owner}`);
};

class Offer implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly id: SenderId,
    readonly sg: Group,
    readonly size: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const o = await offerNewFile(r, this.id, this.sg, this.size);
    const owner = m.owners.get(this.sg);
    if (owner !== undefined && owner !== this.id) return expectConflict(o, owner, this.sg);
    expect(o.kind, JSON.stringify(o)).toBe("loaded");
    if (o.kind === "loaded") m.loaded.add(refKey(o.ref));
    m.owners.set(this.sg, this.id);
  }
  toString = () => `Offer(${this.id}, ${this.sg}, ${this.size})`;
}

/** Several senders offer a file of the same group at the same moment. */
class Race implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly ids: ReadonlyArray<SenderId>,
    readonly sg: Group,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const outcomes = await Promise.all(this.ids.map((id) => offerNewFile(r, id, this.sg, 300)));
    const winners = this.ids.filter((_, i) => outcomes[i]?.kind === "loaded");
    const before = m.owners.get(this.sg);
    // An owned group keeps its owner; a free one goes to exactly one of the racers.
    const owner = before ?? winners[0];
    expect(winners, `racers ${this.ids.join(",")}`).toEqual(before !== undefined ? this.ids.filter((id) => id === before) : [owner]);
    for (const [i, o] of outcomes.entries()) {
      if (this.ids[i] === owner && o.kind === "loaded") m.loaded.add(refKey(o.ref));
      else expectConflict(o, owner!, this.sg);
    }
    if (owner !== undefined) m.owners.set(this.sg, owner);
  }
  toString = () => `Race([${this.ids.join(",")}], ${this.sg})`;
}

class Release implements fc.AsyncCommand<Model, Real> {
  constructor(readonly sg: Group) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    expect(await r.registry.release(this.sg)).toBe(m.owners.has(this.sg));
    m.owners.delete(this.sg);
  }
  toString = () => `Release(${this.sg})`;
}

class Restart implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_m: Model, r: Real): Promise<void> {
    await r.receiver.stop();
    r.receiver = await startReceiver(r);
  }
  toString = () => "Restart";
}

/** After every step: the registry says exactly what the model says, and so does the storage. */
const checkAgainstModel = async (m: Model, r: Real) => {
  const listed = await r.registry.list();
  expect(Object.fromEntries(listed.map((o) => [o.sg, o.senderId]))).toEqual(Object.fromEntries([...m.owners].sort()));
  const stored = await listFiles(join(r.centre, "sequence"));
  expect(stored).toEqual([...m.loaded].sort());
};

const checked = (c: fc.AsyncCommand<Model, Real>): fc.AsyncCommand<Model, Real> => ({
  check: (m) => c.check(m),
  run: async (m, r) => {
    await c.run(m, r);
    await checkAgainstModel(m, r);
  },
  toString: () => c.toString(),
});

const sender = fc.constantFrom(...senders);
const group = fc.constantFrom(...groups);
const commands = fc.commands(
  [
    fc.tuple(sender, group, fc.integer({ min: 0, max: 3000 })).map(([id, sg, size]) => checked(new Offer(id, sg, size))),
    fc.tuple(fc.uniqueArray(sender, { minLength: 2, maxLength: 3 }), group).map(([ids, sg]) => checked(new Race(ids, sg))),
    group.map((sg) => checked(new Release(sg))),
    fc.constant(checked(new Restart())),
  ],
  { maxCommands: 14 },
);

test.prop([commands], { numRuns: 25 })(
  "a group has at most one owner, the first claimant; non-owners' offers get CONFLICT and none of their files is loaded; a release lets exactly one next claimant win",
  async (cmds) => {
    const run = ++runs;
    const root = join(top, `run${run}`);
    const centre = join(root, "centre");
    const group = `model${run}`;
    const admin = await rawClient(server.url, `admin${run}`);
    const clients = new Map<SenderId, Client>();
    const base = { root, centre, group };
    const real: Real = {
      ...base,
      receiver: await startReceiver(base),
      clients,
      registry: await OwnershipRegistry.open(admin, group),
      admin,
      files: 0,
    };
    try {
      for (const id of senders) {
        const nc = await rawClient(server.url, id);
        clients.set(id, {
          nc,
          link: new SenderLink(nc, { group, senderId: id, window: 4, chunkBytes: 1024, requestTimeoutMs: 10_000 }),
          session: undefined,
        });
      }
      await fc.asyncModelRun(() => ({ model: { owners: new Map<Group, SenderId>(), loaded: new Set<string>() }, real }), cmds);
    } finally {
      await real.receiver.stop();
      for (const c of clients.values()) await c.nc.close();
      await admin.close();
      await removeAll(root);
    }
  },
);
