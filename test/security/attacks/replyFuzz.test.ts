// Fuzzed reply subjects against a live receiver: it answers a request only into the asking
// sender's own inbox, never anywhere else, whatever the subject looks like. The server here has
// no permissions, so an observer can see every message the receiver publishes.
import { fc } from "@fast-check/vitest";
import type { Msg } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { Receiver } from "../../../src/actors/receiver/receiver.js";
import { encodeJson } from "../../../src/protocol/messages.js";
import { helloSubject, isSenderInbox, senderInboxPrefix } from "../../../src/protocol/subjects.js";
import { startTestNatsServer, type TestNatsServer } from "../../harness/natsServer.js";
import { removeAll, startReceiver, tempRoot } from "../../harness/syncPair.js";
import { eventually, helloBody, rawClient, sayHello } from "../kit.js";

let server: TestNatsServer;
let root: string;
let receiver: Receiver;
beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-replyfuzz-");
  receiver = await startReceiver(server, `${root}/centre`, { receiver_group: "fuzz" });
});
afterAll(async () => {
  await receiver.stop();
  await server.cleanup();
  await removeAll(root);
});

const token = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
  fc.constantFrom(
    "$JS",
    "$KV",
    "$O",
    "$SYS",
    "API",
    "STREAM",
    "PURGE",
    "_INBOX",
    "_tsync_inbox",
    "mallory",
    "victim",
    "tsync",
    "fuzz",
    "s",
    "bye",
    "*",
    ">",
  ),
);
/** Reply subjects: random ones, privileged ones, and near misses of the sender's own inbox. */
const reply = fc.oneof(
  fc.array(token, { minLength: 1, maxLength: 7 }).map((t) => t.join(".")),
  fc.array(token, { minLength: 0, maxLength: 3 }).map((t) => [senderInboxPrefix("mallory"), ...t].join(".")),
  fc.array(token, { minLength: 1, maxLength: 3 }).map((t) => [senderInboxPrefix("victim"), ...t].join(".")),
  fc.array(token, { minLength: 1, maxLength: 3 }).map((t) => [`${senderInboxPrefix("mallory")}x`, ...t].join(".")),
);

test("property: the receiver answers only into the asking sender's own inbox; every other reply subject is dropped and never published to", async () => {
  const mallory = await rawClient(server.url, "mallory");
  const observer = await rawClient(server.url, "observer", undefined, { inboxPrefix: "_observer" });
  const seen: Msg[] = [];
  observer.subscribe(">", { callback: (_e, m) => void seen.push(m) });
  await observer.flush();
  try {
    // A live session too, so requests inside it are fuzzed as well.
    const grant = await sayHello(mallory, "fuzz", "mallory");
    let prefix = String(grant["sessionPrefix"]);
    await fc.assert(
      fc.asyncProperty(reply, fc.constantFrom("hello", "offer", "delete", "bye"), async (r, op) => {
        seen.length = 0;
        const dropped = receiver.core.stats.droppedReplies;
        const subject = op === "hello" ? helloSubject("fuzz", "mallory") : `${prefix}.${op}`;
        const body =
          op === "hello"
            ? helloBody("mallory")
            : encodeJson({ sg: "root.m", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 1 });
        try {
          mallory.publish(subject, body, { reply: r });
        } catch {
          return; // the client refuses to send such a subject at all: nothing reaches the receiver
        }
        await mallory.flush();
        if (isSenderInbox(r, "mallory")) {
          await eventually(`an answer on ${r}`, () => (seen.some((m) => m.subject === r) ? true : undefined), 10_000);
          if (op === "bye" || op === "hello") {
            // A bye ends the session and a hello replaces it: take the new one for later requests.
            prefix = String((await sayHello(mallory, "fuzz", "mallory"))["sessionPrefix"]);
          }
        } else {
          await eventually(
            `the request with reply ${r} to be dropped`,
            () => (receiver.core.stats.droppedReplies > dropped ? true : undefined),
            10_000,
          );
          // The drop happens before anything is handled: nothing was ever published to `r`.
          await observer.flush();
          expect(seen.filter((m) => m.subject === r)).toEqual([]);
        }
      }),
      { numRuns: 200 },
    );
  } finally {
    await mallory.close();
    await observer.close();
  }
});
