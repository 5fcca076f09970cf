import { describe, expect, test } from "vitest";
import { ChunkAck, decodeJson, encodeReply, OfferReply, PlainReply } from "../../src/protocol/messages.js";
import { Code, reply } from "../../src/protocol/status.js";

describe("replies are built once and encoded through their schemas", () => {
  test("a reply of the right shape encodes and decodes back", () => {
    const bytes = encodeReply(OfferReply)(reply(Code.start, "send", { fileId: "f1", offset: 0 }));
    const back = decodeJson(OfferReply)(bytes);
    expect(back).toMatchObject({ success: { code: Code.start, message: "send", fileId: "f1", offset: 0 } });
  });

  test("a field the schema lacks, a field of the wrong type or a code outside Code throws instead of being sent", () => {
    expect(() => encodeReply(ChunkAck)(reply(Code.ok, "", { fileId: "f1" }))).toThrow();
    expect(() => encodeReply(ChunkAck)(reply(Code.ok, "", { offset: "4" }))).toThrow();
    expect(() => encodeReply(PlainReply)({ code: 999, message: "?" })).toThrow();
  });

  test("reply takes only a Code", () => {
    // @ts-expect-error 999 is not a Code
    reply(999, "?");
  });
});
