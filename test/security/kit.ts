// Shared by the fleet and security tests: tiny edge data dirs, raw NATS clients that speak the
// protocol by hand (to lie, forge and fuzz), and listings to prove where bytes were written.
import { mkdir, readFile, readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { connect, type ConnectionOptions, type Msg, type NatsConnection, type RequestOptions } from "@nats-io/transport-node";
import { expect } from "vitest";
import { buildSampleDataDir, type SampleFile, type SampleLayout } from "../../src/actors/sampleDataDir.js";
import { writeSealedTsFile } from "../../src/actors/tsfileFiles.js";
import { connectionOptions, senderConnectionName, type NatsClientSettings } from "../../src/actors/natsConnect.js";
import { encodeJson, protocolVersion } from "../../src/protocol/messages.js";
import { helloSubject, senderInboxPrefix } from "../../src/protocol/subjects.js";
import { tsyncVersion } from "../../src/version.js";

/** One device per group, `files` sealed TsFiles per group, a few points each: fast to build and send. */
export const tinyLayout = (groups: ReadonlyArray<string>, files = 1): SampleLayout => ({
  groups: Object.fromEntries(groups.map((g) => [g, ["dev1"]])),
  virtualGroups: 1,
  partitions: 1,
  filesPerPartition: files,
  pointsPerSeries: 4,
  withUnsealed: false,
});

export const buildEdge = (dir: string, groups: ReadonlyArray<string>, files = 1): Promise<ReadonlyArray<SampleFile>> =>
  buildSampleDataDir(dir, tinyLayout(groups, files));

/** One more sealed TsFile (with its .resource) in `sg`, time partition 0, whose points depend on `seed`. */
export const addSealedFile = async (edge: string, sg: string, name: string, seed: number): Promise<SampleFile> => {
  const dir = join(edge, "sequence", sg, "0", "0");
  await mkdir(dir, { recursive: true });
  const timestamps = [1n, 2n, 3n].map((t) => BigInt(seed) * 1000n + t);
  const w = await writeSealedTsFile(dir, name, {
    devices: [
      { path: `${sg}.dev${seed}`, measurements: [{ name: "s", dataType: "INT64", timestamps, values: timestamps.map((t) => t * 7n) }] },
    ],
  });
  return { sg, vg: "0", tp: "0", name, path: w.tsfilePath, sealed: true };
};

/** Where the fs storage puts a sample file (and its .resource) under the receiver's data dir. */
export const landedAt = (centre: string, f: SampleFile): string => join(centre, "sequence", f.sg, f.vg, f.tp, f.name);

export const expectLandedByteForByte = async (centre: string, files: ReadonlyArray<SampleFile>): Promise<void> => {
  for (const f of files) {
    expect(await readFile(landedAt(centre, f)), f.name).toEqual(await readFile(f.path));
    expect(await readFile(`${landedAt(centre, f)}.resource`), `${f.name}.resource`).toEqual(await readFile(`${f.path}.resource`));
  }
};

export const noAuth: NatsClientSettings = {
  nats_user: undefined,
  nats_password: undefined,
  nats_token: undefined,
  nats_nkey_seed_file: undefined,
  nats_creds_file: undefined,
  tls_ca_file: undefined,
  tls_cert_file: undefined,
  tls_key_file: undefined,
};

/**
 * A hand-driven client. By default it is named like sender `senderId`'s connection and takes its
 * replies in that sender's inbox; `extra` overrides either (a liar names its connection what it likes).
 */
export const rawClient = (
  servers: string | ReadonlyArray<string>,
  senderId: string,
  settings: NatsClientSettings = noAuth,
  extra: Partial<ConnectionOptions> = {},
): Promise<NatsConnection> =>
  connect({
    ...connectionOptions(typeof servers === "string" ? [servers] : servers, senderConnectionName(senderId), settings),
    maxReconnectAttempts: 0,
    // The receiver answers only into the asking sender's own inbox.
    inboxPrefix: senderInboxPrefix(senderId),
    ...extra,
  });

export interface AnyReply {
  readonly code: number;
  readonly message: string;
  readonly [k: string]: unknown;
}

export const replyOf = (m: Msg): AnyReply => m.json<AnyReply>();

/** A hello as a sender would send it, with fields added or overridden. */
export const helloBody = (senderId: string, extra: Record<string, unknown> = {}): Uint8Array =>
  encodeJson({ protocol: protocolVersion, senderId, tsyncVersion, storageGroups: [], ...extra });

export const sayHello = async (
  nc: NatsConnection,
  group: string,
  senderId: string,
  extra: Record<string, unknown> = {},
  opts: Partial<RequestOptions> = {},
): Promise<AnyReply> => replyOf(await nc.request(helloSubject(group, senderId), helloBody(senderId, extra), { timeout: 10_000, ...opts }));

/** Every path under `root` (directories end in "/"), relative, sorted: to prove nothing else appeared. */
export const listTree = async (root: string, skip: (rel: string) => boolean = () => false): Promise<string[]> => {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      const rel = relative(root, p);
      if (skip(rel)) continue;
      if (e.isDirectory()) {
        out.push(`${rel}/`);
        await walk(p);
      } else out.push(rel);
    }
  };
  await walk(root);
  return out.sort();
};

/** Polls `probe` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export const eventually = async <A>(what: string, probe: () => Promise<A | undefined> | A | undefined, timeoutMs = 15_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

let helloInto_n = 0;

/**
 * A hello on `id`'s subject whose answer is asked into `id`'s inbox through a subscription of
 * this connection (which only a server without permissions allows), so one connection can speak
 * for many ids: the receiver answers only into the inbox of the id it was asked as.
 */
export const helloInto = (
  nc: NatsConnection,
  group: string,
  id: string,
  data: Uint8Array = helloBody(id),
  timeoutMs = 10_000,
): Promise<AnyReply> => {
  const reply = `${senderInboxPrefix(id)}.h${helloInto_n++}.1`;
  return new Promise<AnyReply>((resolve, reject) => {
    const sub = nc.subscribe(reply, { max: 1, callback: (e, m) => (e ? reject(e) : resolve(replyOf(m))) });
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`no answer to the hello of ${id} on ${reply}`));
    }, timeoutMs);
    void sub.closed.then(() => clearTimeout(timer));
    nc.publish(helloSubject(group, id), data, { reply });
  });
};
