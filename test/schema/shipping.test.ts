import { appendFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Result } from "effect";
import { fc, test as prop } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { applySchemaPiece, decodeSchemaRequest } from "../../src/actors/receiver/schemaSync.js";
import { syncSchemaLog } from "../../src/actors/sender/schemaLog.js";
import { fsStorage } from "../../src/plugins/storageFs.js";
import { cutSchemaRecords, frameMlogRecord } from "../../src/iotdb/schemaRecords.js";
import { encodeJson } from "../../src/protocol/messages.js";
import type { SessionInfo } from "../../src/machines/senderTypes.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

let server: TestNatsServer;
let nc: NatsConnection;
let root: string;
let n = 0;
beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connect({ servers: server.url });
  root = await tempRoot("tsync-shipping-");
});
afterAll(async () => {
  await nc.close();
  await server.cleanup();
  await removeAll(root);
});

/** The receiver's schema handling alone, answering on a session subject, with the fs storage behind it. */
const receiverFor = async (dir: string, prefix: string) => {
  const storage = fsStorage(join(dir, "centre"));
  const sub = nc.subscribe(`${prefix}.schema`, {
    callback: (_e, m) => {
      void (async () => {
        const req = decodeSchemaRequest(m.headers, m.data, 1 << 20);
        m.respond(
          encodeJson(Result.isFailure(req) ? req.failure : await applySchemaPiece(storage, join(dir, "state"), "edge1", req.success)),
        );
      })();
    },
  });
  await nc.flush();
  return {
    copy: () => readFile(join(dir, "centre", "schema", "edge1", "mlog.bin")).catch(() => Buffer.alloc(0)),
    stop: () => sub.unsubscribe(),
  };
};

const fixture = async (chunkBytes: number) => {
  const dir = join(root, String(n++));
  await mkdir(join(dir, "work"), { recursive: true });
  const prefix = `t.s.i.edge1.${n}`;
  const session: SessionInfo = { prefix, sessionId: String(n), chunkBytes, filesInFlight: 0 };
  return {
    dir,
    session,
    mlog: join(dir, "mlog.bin"),
    receiver: await receiverFor(dir, prefix),
    options: { nc, workDir: join(dir, "work"), path: join(dir, "mlog.bin") },
  };
};

describe("shipping the schema log in pieces", () => {
  prop.prop(
    [
      fc.array(fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
    ],
    { numRuns: 12 },
  )(
    "whatever bytes IoTDB has written when a round comes, the receiver's copy is exactly the log's whole records",
    async (appends, cuts) => {
      const f = await fixture(64);
      try {
        const log = Buffer.concat(appends.flat().map(frameMlogRecord));
        // The log grows by the appends, each round seeing it cut at some byte (maybe mid-record).
        let written = 0;
        await writeFile(f.mlog, "");
        for (const i of appends.keys()) {
          const upTo = appends
            .slice(0, i + 1)
            .flat()
            .reduce((s, p) => s + p.length + 12, 0);
          const cutAt = Math.min(upTo, written + ((cuts[i] ?? 0) % (upTo - written + 1)));
          await appendFile(f.mlog, log.subarray(written, cutAt));
          written = cutAt;
          await syncSchemaLog(f.options, f.session);
          const copy = await f.receiver.copy();
          expect(copy).toEqual(log.subarray(0, cutSchemaRecords("mlog.bin", log.subarray(0, written)).end));
        }
        await appendFile(f.mlog, log.subarray(written));
        await syncSchemaLog(f.options, f.session);
        expect(await f.receiver.copy()).toEqual(log);
      } finally {
        f.receiver.stop();
      }
    },
  );

  test("a record larger than a piece is a failure that says what to raise, not a silent stall", async () => {
    const f = await fixture(64);
    try {
      await writeFile(f.mlog, frameMlogRecord(new Uint8Array(100)));
      await expect(syncSchemaLog(f.options, f.session)).rejects.toMatchObject({
        kind: "fatal",
        message: expect.stringContaining("larger than a schema piece (64 bytes)"),
      });
    } finally {
      f.receiver.stop();
    }
  });

  test("records before damage are shipped, then the damage is reported with its byte", async () => {
    const f = await fixture(1024);
    try {
      const good = frameMlogRecord(new TextEncoder().encode("plan a"));
      const bad = frameMlogRecord(new TextEncoder().encode("plan b"));
      bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
      await writeFile(f.mlog, Buffer.concat([good, bad]));
      await expect(syncSchemaLog(f.options, f.session)).rejects.toMatchObject({
        kind: "fatal",
        message: expect.stringContaining(`is damaged at byte ${good.length}`),
      });
      expect(new Uint8Array(await f.receiver.copy())).toEqual(good);
    } finally {
      f.receiver.stop();
    }
  });
});
