// Model-based conflict properties: random commands of three senders, each a real Sender running
// the real round machine over real TsFiles, against two receivers of one group on one real
// nats-server, with storage-group releases at any point (also in the middle of a round, between
// any two of its requests), receiver restarts and deletions. Every placement and removal of both
// receivers lands in one ordered history (test/props/historyStorage.ts); after each command the
// history, the registry, the receivers' disks and the rounds' summaries are checked against the rules.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fc, test } from "@fast-check/vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect } from "vitest";
import { OwnershipRegistry } from "../../src/actors/receiver/ownership.js";
import type { Receiver } from "../../src/actors/receiver/receiver.js";
import { Sender } from "../../src/actors/sender/sender.js";
import type { RoundSummary } from "../../src/machines/senderTypes.js";
import { senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { listFiles, removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";
import { appendHistory, readHistory, type HistoryEvent } from "../props/historyStorage.js";
import { addSealedFile, rawClient } from "../security/kit.js";

const senders = ["s0", "s1", "s2"] as const;
const groups = ["root.g0", "root.g1"] as const;
/** File names every sender draws from: senders collide on names, never on bytes. */
const names = [1, 2, 3].map((k) => `${1000 + k}-${k}-0-0.tsfile`);
const receiverCount = 2;
type SenderId = (typeof senders)[number];
type Group = (typeof groups)[number];

const historyStorage = fileURLToPath(new URL("../props/historyStorage.ts", import.meta.url));

let server: TestNatsServer;
let top: string;
let runs = 0;
beforeAll(async () => {
  server = await startTestNatsServer();
  top = await tempRoot("tsync-conflicts-");
});
afterAll(async () => {
  await server.cleanup();
  await removeAll(top);
});

/** A sender's round as the history brackets it: what its edge held when it began, and its summary. */
interface RoundRecord {
  readonly sender: SenderId;
  readonly edgeAtStart: ReadonlyArray<string>;
  summary?: RoundSummary;
}

interface Edge {
  readonly sender: Sender;
  readonly dir: string;
  /** Files on the edge now (`sg/0/0/name`), and the bytes of every file it ever had. */
  readonly files: Set<string>;
  readonly bytes: Map<string, { tsfile: Buffer; resource: Buffer }>;
  /** Set for one round: before its `at`-th request, everything else in flight lands, then `run`. */
  interrupt: { at: number; run: () => Promise<void> } | undefined;
  requests: number;
}

interface Real {
  readonly root: string;
  readonly group: string;
  readonly history: string;
  readonly receivers: Receiver[];
  readonly edges: Map<SenderId, Edge>;
  readonly registry: OwnershipRegistry;
  readonly admin: NatsConnection;
  readonly rounds: RoundRecord[];
}

const centreOf = (real: Real, i: number) => join(real.root, `centre${i}`);

const startOne = (real: { root: string; group: string; history: string }, i: number) =>
  startReceiver(server, join(real.root, `centre${i}`), {
    receiver_group: real.group,
    storage_plugin: historyStorage,
    "plugin.history_file": real.history,
    "plugin.receiver": `r${i}`,
  });

/**
 * Opens sender `id` on its own edge. Its connection's `request` is wrapped so a round can be
 * interrupted before any of its requests: the requests already in flight land first, so the
 * history stays in the order things happened.
 */
const openEdge = async (real: { root: string; group: string }, id: SenderId): Promise<Edge> => {
  const dir = join(real.root, `edge-${id}`);
  const sender = await Sender.open({
    config: senderConfig({ data_directory: dir, nats_url: server.url, receiver_group: real.group, sender_name: id }),
  });
  const edge: Edge = { sender, dir, files: new Set(), bytes: new Map(), interrupt: undefined, requests: 0 };
  const nc = sender.nc;
  const request = nc.request.bind(nc);
  const inflight = new Set<Promise<unknown>>();
  /** While the interruption runs, the round's other requests (puts go several at once) wait too. */
  let paused: Promise<void> | undefined;
  nc.request = async (...args: Parameters<NatsConnection["request"]>) => {
    const hook = edge.interrupt;
    if (hook && ++edge.requests === hook.at) {
      edge.interrupt = undefined;
      paused = Promise.allSettled([...inflight]).then(() => hook.run());
      try {
        await paused;
      } finally {
        paused = undefined;
      }
    }
    while (paused) await paused.catch(() => undefined);
    const p = request(...args);
    inflight.add(p);
    const settle = () => inflight.delete(p);
    void p.then(settle, settle);
    return p;
  };
  return edge;
};

/** A round of `id`, bracketed in the history; `interrupt` runs before its `at`-th request (or after it, if the round makes fewer). */
const round = async (real: Real, id: SenderId, interrupt?: { at: number; run: () => Promise<void> }) => {
  const edge = real.edges.get(id)!;
  const record: RoundRecord = { sender: id, edgeAtStart: [...edge.files] };
  real.rounds.push(record);
  await appendHistory(real.history, [{ op: "roundStart", sender: id }]);
  edge.requests = 0;
  edge.interrupt = interrupt;
  try {
    record.summary = await edge.sender.runOnce();
  } finally {
    edge.interrupt = undefined;
    await appendHistory(real.history, [{ op: "roundEnd", sender: id }]);
  }
  if (interrupt && edge.requests < interrupt.at) await interrupt.run();
};

const release = async (real: Real, sg: Group) => {
  await real.registry.release(sg);
  await appendHistory(real.history, [{ op: "release", sg }]);
};

const restart = async (real: Real, i: number) => {
  await real.receivers[i]!.stop();
  real.receivers[i] = await startOne(real, i);
};

const addFiles = async (real: Real, id: SenderId, sg: Group, which: ReadonlyArray<number>) => {
  const edge = real.edges.get(id)!;
  for (const k of which) {
    const path = `${sg}/0/0/${names[k]!}`;
    if (edge.files.has(path)) continue;
    // Bytes unique to (sender, group, name): a file another sender wrote over it would show.
    const seed = senders.indexOf(id) * 100 + groups.indexOf(sg) * 10 + k + 1;
    const f = await addSealedFile(edge.dir, sg, names[k]!, seed);
    edge.files.add(path);
    edge.bytes.set(path, { tsfile: await readFile(f.path), resource: await readFile(`${f.path}.resource`) });
  }
};

const removeFiles = async (real: Real, id: SenderId, sg: Group, which: ReadonlyArray<number>) => {
  const edge = real.edges.get(id)!;
  for (const k of which) {
    const path = `${sg}/0/0/${names[k]!}`;
    if (!edge.files.delete(path)) continue;
    const at = join(edge.dir, "sequence", path);
    await rm(at, { force: true });
    await rm(`${at}.resource`, { force: true });
  }
};

/** What one sender does inside another's round. */
type Action =
  | { readonly kind: "release"; readonly sg: Group }
  | { readonly kind: "restart"; readonly receiver: number }
  | { readonly kind: "sync"; readonly id: SenderId; readonly sg: Group; readonly files: ReadonlyArray<number> }
  /** A release, and another sender claims the group at once: the case a round in flight must notice. */
  | { readonly kind: "handover"; readonly id: SenderId; readonly sg: Group; readonly files: ReadonlyArray<number> };

const runAction = async (real: Real, a: Action, outer: SenderId) => {
  if (a.kind === "release") return release(real, a.sg);
  if (a.kind === "restart") return restart(real, a.receiver);
  if (a.kind === "handover") await release(real, a.sg);
  // A sender cannot run a round inside its own (its work directory is locked by the first).
  if (a.id === outer) return;
  await addFiles(real, a.id, a.sg, a.files);
  await round(real, a.id);
};

const owners = /belongs to sender (\S+) /;

/**
 * The rules, checked over the whole history after every command:
 * - per group, between two releases, every placement is by one sender (at most one owner at any
 *   instant; no file of a group loaded from a non-owner), and the registry names that sender;
 * - per receiver and path, every placement is by the sender that placed it first, until that
 *   sender removes it (the owner's files are never changed by another), and the bytes there are
 *   that sender's, byte for byte; nothing else is there;
 * - a removal is of the remover's own copy, in its own round, while it owns the group;
 * - a refused sender is told the owner: every conflict names the group's owner; a round that
 *   began while another sender owned a group it had new files of, with no release of that
 *   group during it, reports the conflict naming that owner and neither sends nor fails those files.
 */
const checkRules = async (real: Real) => {
  const history = await readHistory(real.history);
  const owner = new Map<string, string>();
  const everOwned = new Map<string, Set<string>>();
  const placedBy = new Map<string, string>();
  const loadedBy = new Set<string>();
  const open: Array<{ record: RoundRecord; ownersAtStart: Map<string, string>; pending: string[]; released: Set<string> }> = [];
  let started = 0;
  for (const [i, e] of history.entries()) {
    const at = `history line ${i + 1}: ${JSON.stringify(e)}`;
    switch (e.op) {
      case "release":
        owner.delete(e.sg);
        for (const r of open) r.released.add(e.sg);
        break;
      case "load": {
        const o = owner.get(e.sg);
        if (o === undefined) {
          owner.set(e.sg, e.sender);
          everOwned.set(e.sg, (everOwned.get(e.sg) ?? new Set()).add(e.sender));
        } else expect(e.sender, `${at}: placed while ${o} owns ${e.sg}`).toBe(o);
        const where = `${e.receiver}:${e.path}`;
        const first = placedBy.get(where);
        if (first !== undefined) expect(e.sender, `${at}: ${first}'s file overwritten`).toBe(first);
        placedBy.set(where, e.sender);
        loadedBy.add(`${e.sender}:${e.path}`);
        break;
      }
      case "remove":
        expect(open.at(-1)?.record.sender, `${at}: removed outside its loader's round`).toBe(e.sender);
        expect(owner.get(e.sg), `${at}: removed while its loader does not own ${e.sg}`).toBe(e.sender);
        placedBy.delete(`${e.receiver}:${e.path}`);
        loadedBy.delete(`${e.sender}:${e.path}`);
        break;
      case "roundStart": {
        const record = real.rounds[started++]!;
        expect(record.sender, at).toBe(e.sender);
        const pending = record.edgeAtStart.filter((p) => !loadedBy.has(`${e.sender}:${p}`));
        open.push({ record, ownersAtStart: new Map(owner), pending, released: new Set() });
        break;
      }
      case "roundEnd": {
        const r = open.pop()!;
        expect(r.record.sender, at).toBe(e.sender);
        const s = r.record.summary;
        if (!s) break;
        for (const c of s.conflicts) {
          const named = owners.exec(c.message)?.[1];
          expect(named, `${e.sender} refused for ${c.sg}: ${c.message}`).not.toBe(e.sender);
          expect([...(everOwned.get(c.sg) ?? [])], `${e.sender} refused for ${c.sg}: ${c.message}`).toContain(named);
        }
        for (const f of s.failed) {
          const named = owners.exec(f.reason)?.[1];
          if (named === undefined) continue;
          expect(named, `${e.sender}: ${f.file}: ${f.reason}`).not.toBe(e.sender);
          expect([...(everOwned.get(f.file.split("/")[0]!) ?? [])], `${e.sender}: ${f.file}: ${f.reason}`).toContain(named);
        }
        for (const [sg, o] of r.ownersAtStart) {
          const mine = r.pending.filter((p) => p.startsWith(`${sg}/`));
          if (o === e.sender || r.released.has(sg) || mine.length === 0) continue;
          const c = s.conflicts.find((x) => x.sg === sg);
          expect(c, `${e.sender} has ${mine.join(", ")} while ${o} owns ${sg}: ${JSON.stringify(s)}`).toBeDefined();
          expect(owners.exec(c!.message)?.[1], c!.message).toBe(o);
          // A delete it asked for is refused too (and reported failed), not a file of its sent.
          const touched = [...s.sent, ...s.failed].map((x) => x.file).filter((f) => f.startsWith(`${sg}/`) && !f.endsWith(" (delete)"));
          expect(touched, `${e.sender}'s files of ${sg}, owned by ${o}`).toEqual([]);
        }
        break;
      }
    }
  }
  for (const sg of groups) expect((await real.registry.owner(sg))?.senderId, `owner of ${sg}`).toBe(owner.get(sg));
  for (let i = 0; i < receiverCount; i++) {
    const expected: string[] = [];
    for (const [where, sender] of placedBy) {
      const [receiver, path] = where.split(":") as [string, string];
      if (receiver !== `r${i}`) continue;
      expected.push(path, `${path}.resource`);
      const bytes = real.edges.get(sender as SenderId)!.bytes.get(path)!;
      const landed = join(centreOf(real, i), "sequence", path);
      expect((await readFile(landed)).equals(bytes.tsfile), `${where}: not ${sender}'s bytes`).toBe(true);
      expect((await readFile(`${landed}.resource`)).equals(bytes.resource), `${where}.resource: not ${sender}'s bytes`).toBe(true);
    }
    expect(await listFiles(join(centreOf(real, i), "sequence")), `receiver r${i}'s files`).toEqual(expected.sort());
  }
};

type Model = Record<string, never>;
const command = (name: string, run: (r: Real) => Promise<void>): fc.AsyncCommand<Model, Real> => ({
  check: () => true,
  run: async (_m, r) => {
    await run(r);
    await checkRules(r);
  },
  toString: () => name,
});

const sender = fc.constantFrom(...senders);
const group = fc.constantFrom(...groups);
const fileSet = fc.uniqueArray(fc.integer({ min: 0, max: names.length - 1 }), { minLength: 1, maxLength: names.length });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: group.map((sg) => ({ kind: "release" as const, sg })) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("sync" as const), id: sender, sg: group, files: fileSet }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("handover" as const), id: sender, sg: group, files: fileSet }) },
  { weight: 1, arbitrary: fc.nat(receiverCount - 1).map((receiver) => ({ kind: "restart" as const, receiver })) },
);
/** Before which request of the round the actions run: 1 is before the hello; small files go one request each. */
const interruption = fc.record({ at: fc.integer({ min: 1, max: 5 }), actions: fc.array(action, { minLength: 1, maxLength: 3 }) });

const commands = fc.commands(
  [
    fc.tuple(sender, group, fileSet, fc.option(interruption, { freq: 2, nil: undefined })).map(([id, sg, files, int]) =>
      command(`Sync(${id}, ${sg}, [${files}]${int ? `, before request ${int.at}: ${JSON.stringify(int.actions)}` : ""})`, async (r) => {
        await addFiles(r, id, sg, files);
        await round(
          r,
          id,
          int && {
            at: int.at,
            run: async () => {
              for (const a of int.actions) await runAction(r, a, id);
            },
          },
        );
      }),
    ),
    fc
      .tuple(sender, group, fileSet)
      .map(([id, sg, files]) => command(`Delete(${id}, ${sg}, [${files}])`, (r) => removeFiles(r, id, sg, files).then(() => round(r, id)))),
    group.map((sg) => command(`Release(${sg})`, (r) => release(r, sg))),
    fc.nat(receiverCount - 1).map((i) => command(`Restart(r${i})`, (r) => restart(r, i))),
  ],
  { maxCommands: 60, size: "max" },
);

test.prop([commands], { numRuns: 40 })(
  "two receivers, three senders, releases anywhere: at most one owner per group at any instant, no file placed by a non-owner, every refused sender told the owner, an owner's files never changed by another sender (byte for byte), deletes only by the loader while it owns the group",
  async (cmds) => {
    const run = ++runs;
    const root = join(top, `run${run}`);
    const group = `conflicts${run}`;
    const history = join(root, "history.jsonl");
    const base = { root, group, history };
    const admin = await rawClient(server.url, `admin${run}`);
    const receivers: Receiver[] = [];
    const edges = new Map<SenderId, Edge>();
    try {
      for (let i = 0; i < receiverCount; i++) receivers.push(await startOne(base, i));
      for (const id of senders) edges.set(id, await openEdge(base, id));
      const real: Real = { ...base, receivers, edges, registry: await OwnershipRegistry.open(admin, group), admin, rounds: [] };
      await fc.asyncModelRun(() => ({ model: {}, real }), cmds);
    } finally {
      for (const e of edges.values()) await e.sender.close();
      for (const r of receivers) await r.stop();
      await admin.close();
      await removeAll(root);
    }
  },
  600_000,
);
