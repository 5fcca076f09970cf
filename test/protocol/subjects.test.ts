// The subject layout senders and receivers agree on, which server permissions are written against,
// and the chunk size a server's max_payload allows.
import { describe, expect, test } from "vitest";
import {
  ChunkHeader,
  chunkHeadroom,
  chunkSizeFor,
  Feature,
  helloSubject,
  helloWildcard,
  isSenderInbox,
  PutHeader,
  receiverQueue,
  SchemaHeader,
  senderInboxPrefix,
  sessionPrefix,
  sessionSubject,
  subjectMatches,
} from "../../src/protocol/subjects.js";

describe("subjects", () => {
  test("hello, queue, session and inbox subjects, spelled out", () => {
    expect(helloSubject("g1", "plant-1")).toBe("tsync.g1.hello.plant-1");
    expect(helloWildcard("g1")).toBe("tsync.g1.hello.*");
    expect(receiverQueue("g1")).toBe("tsync-receivers-g1");
    expect(senderInboxPrefix("plant-1")).toBe("_tsync_inbox.plant-1");
    expect(sessionPrefix("g1", "r0", "plant-1", "abc")).toBe("tsync.g1.s.r0.plant-1.abc");
    expect(sessionSubject("tsync.g1.s.r0.plant-1.abc", "chunk")).toBe("tsync.g1.s.r0.plant-1.abc.chunk");
  });

  test("headers and features, as the other side reads them", () => {
    expect(ChunkHeader).toEqual({ file: "Tsync-File", offset: "Tsync-Offset" });
    expect(PutHeader).toBe("Tsync-Put");
    expect(Feature).toEqual({ put: "put" });
    expect(SchemaHeader).toEqual({
      file: "Tsync-Schema-File",
      epoch: "Tsync-Schema-Epoch",
      offset: "Tsync-Offset",
      sha256: "Tsync-Sha256",
    });
  });
});

describe("a reply subject is answered only inside the asking sender's inbox", () => {
  test("tokens of letters, digits, '_' and '-' under the sender's own prefix", () => {
    expect(isSenderInbox("_tsync_inbox.plant-1.abc", "plant-1")).toBe(true);
    expect(isSenderInbox("_tsync_inbox.plant-1.a_b-C9.x.y", "plant-1")).toBe(true);
    expect(isSenderInbox("_tsync_inbox.plant-1.abc.def.ghi", "plant-1")).toBe(true);
  });

  test("not another sender's, not the bare prefix, no wildcards, no empty tokens", () => {
    for (const subject of [
      "_tsync_inbox.plant-2.abc",
      "_tsync_inbox.plant-10.abc",
      "_tsync_inbox.plant-1",
      "_tsync_inbox.plant-1.",
      "_tsync_inbox.plant-1abc",
      "_tsync_inbox.plant-1.*",
      "_tsync_inbox.plant-1.>",
      "_tsync_inbox.plant-1.a.>",
      "_tsync_inbox.plant-1.a..b",
      "_tsync_inbox.plant-1.a.",
      "_tsync_inbox.plant-1.a b",
      "x._tsync_inbox.plant-1.abc",
      "_INBOX.abc",
      "tsync.g.hello.plant-1",
    ])
      expect(isSenderInbox(subject, "plant-1"), subject).toBe(false);
  });
});

describe("chunk size", () => {
  test("what max_payload leaves after the headers' room, or the configured size when smaller", () => {
    expect(chunkHeadroom).toBe(4096);
    expect(chunkSizeFor(1_048_576, 0)).toBe(1_048_576 - 4096);
    expect(chunkSizeFor(1_048_576, 65_536)).toBe(65_536);
    expect(chunkSizeFor(1_048_576, 2_000_000)).toBe(1_048_576 - 4096);
    expect(chunkSizeFor(1_048_576, 1_048_576 - 4096)).toBe(1_048_576 - 4096);
    expect(chunkSizeFor(1_048_576, 1)).toBe(1);
    expect(chunkSizeFor(1_048_576, -5)).toBe(1_048_576 - 4096);
  });

  test("never under 1 KiB, however small the server's max_payload", () => {
    expect(chunkSizeFor(4096, 0)).toBe(1024);
    expect(chunkSizeFor(5000, 0)).toBe(1024);
    expect(chunkSizeFor(5121, 0)).toBe(1025);
    expect(chunkSizeFor(2000, 100_000)).toBe(1024);
  });
});

describe("subjectMatches", () => {
  test.each([
    ["_tsync_inbox.a1.N.*", "_tsync_inbox.a1.N.7", true],
    ["_tsync_inbox.a1.N.*", "_tsync_inbox.a1.N.7.x", false],
    ["_tsync_inbox.a1.N.*", "_tsync_inbox.a1.N", false],
    ["_tsync_inbox.>", "_tsync_inbox.a1.N.7", true],
    ["_tsync_inbox.>", "_tsync_inbox", false],
    [">", "x", true],
    ["*.a1.>", "_tsync_inbox.a1.N.7", true],
    ["*.a2.>", "_tsync_inbox.a1.N.7", false],
    ["_tsync_inbox.a1.N.7", "_tsync_inbox.a1.N.7", true],
    ["_tsync_inbox.a1.N.7", "_tsync_inbox.a1.N.8", false],
    ["_tsync_inbox.a1", "_tsync_inbox.a1.N.7", false],
  ])("%s hears %s: %s", (pattern, subject, hears) => {
    expect(subjectMatches(pattern, subject)).toBe(hears);
  });
});
