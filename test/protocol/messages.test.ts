// What the receiver decodes from the wire: each field's check, and the sentence a refusal carries
// back as a badMessage (or badName) status.
import { Result, Schema } from "effect";
import { describe, expect, test } from "vitest";
import {
  Commit,
  decodeJson,
  encodeJson,
  FileRef,
  Hello,
  HelloReply,
  Load,
  Offer,
  protocolVersion,
  Put,
  SchemaPiece,
} from "../../src/protocol/messages.js";

const sha = "0123456789abcdef".repeat(4);
const ref = { sg: "root.sg1", vg: "0", tp: "-3", name: "1-1-0-0.tsfile" };
const offer = { ...ref, kind: "tsfile", size: 10 };

type Decoded = Result.Result<unknown, string>;
const decode = <S extends Parameters<typeof decodeJson>[0]>(schema: S, value: unknown): Decoded => decodeJson(schema)(encodeJson(value));
const failure = (r: Decoded): string => {
  if (Result.isSuccess(r)) throw new Error(`decoded: ${JSON.stringify(r.success)}`);
  return r.failure;
};
const success = (r: Decoded): unknown => {
  if (Result.isFailure(r)) throw new Error(`refused: ${r.failure}`);
  return r.success;
};

describe("decoding", () => {
  test("bytes that are not UTF-8 JSON are refused with one sentence", () => {
    expect(failure(decodeJson(Offer)(new Uint8Array([0xff, 0xfe])))).toBe("message is not valid UTF-8 JSON");
    expect(failure(decodeJson(Offer)(new TextEncoder().encode("{")))).toBe("message is not valid UTF-8 JSON");
    expect(failure(decodeJson(Offer)(new Uint8Array(0)))).toBe("message is not valid UTF-8 JSON");
    // A JSON string holding a byte that is not UTF-8: refused, not read with a replacement character.
    expect(failure(decodeJson(Schema.String)(new Uint8Array([0x22, 0xff, 0x22])))).toBe("message is not valid UTF-8 JSON");
  });

  test("a valid offer decodes to itself; sha256 is optional", () => {
    expect(success(decode(Offer, offer))).toEqual(offer);
    expect(success(decode(Offer, { ...offer, sha256: sha }))).toEqual({ ...offer, sha256: sha });
    expect(protocolVersion).toBe(1);
  });

  test("each field of a file reference is checked, and the refusal says which and why", () => {
    expect(failure(decode(FileRef, { ...ref, sg: ".." }))).toMatch(/^name "\.\." is not a name\n\s+at \["sg"\]/);
    expect(failure(decode(FileRef, { ...ref, sg: "a/b" }))).toContain("contains a path separator");
    expect(failure(decode(FileRef, { ...ref, vg: "x" }))).toMatch(/^"x" is not a partition number\n\s+at \["vg"\]/);
    expect(failure(decode(FileRef, { ...ref, tp: "1.5" }))).toMatch(/^"1\.5" is not a partition number\n\s+at \["tp"\]/);
    expect(failure(decode(FileRef, { ...ref, name: "a.txt" }))).toMatch(/^file name "a\.txt" does not end in \.tsfile/);
    expect(failure(decode(FileRef, { ...ref, name: "../a.tsfile" }))).toContain("contains a path separator");
    expect(failure(decode(FileRef, { ...ref, sg: 3 }))).toContain('["sg"]');
  });

  test("sizes are whole and not negative; digests are 64 lower-case hex digits; kinds are the four parts", () => {
    expect(success(decode(Offer, { ...offer, size: 0 }))).toMatchObject({ size: 0 });
    expect(failure(decode(Offer, { ...offer, size: -1 }))).toContain('["size"]');
    expect(failure(decode(Offer, { ...offer, size: 1.5 }))).toContain('["size"]');
    expect(failure(decode(Offer, { ...offer, sha256: sha.toUpperCase() }))).toContain('["sha256"]');
    expect(failure(decode(Offer, { ...offer, sha256: `${sha}0` }))).toContain('["sha256"]');
    expect(failure(decode(Offer, { ...offer, sha256: sha.slice(1) }))).toContain('["sha256"]');
    for (const kind of ["resource", "tsfile", "mods", "mods2"]) expect(success(decode(Offer, { ...offer, kind }))).toMatchObject({ kind });
    expect(failure(decode(Offer, { ...offer, kind: "mods3" }))).toContain('["kind"]');
  });

  test("ids are tokens", () => {
    const commit = { fileId: "f_1-A", size: 4, sha256: sha };
    expect(success(decode(Commit, commit))).toEqual(commit);
    expect(failure(decode(Commit, { ...commit, fileId: "a.b" }))).toMatch(
      /^"a\.b" is not an id of 1-64 letters, digits, '_' or '-'\n\s+at \["fileId"\]/,
    );
    expect(failure(decode(Commit, { ...commit, fileId: "" }))).toContain('["fileId"]');
    const hello = { protocol: 1, senderId: "plant-1", tsyncVersion: "0.1.0", storageGroups: ["root.sg1"] };
    expect(success(decode(Hello, hello))).toEqual(hello);
    expect(failure(decode(Hello, { ...hello, senderId: "plant.1" }))).toContain('["senderId"]');
    expect(failure(decode(Hello, { ...hello, storageGroups: [".."] }))).toContain('["storageGroups"]');
    expect(failure(decode(Hello, { ...hello, protocol: 1.5 }))).toContain('["protocol"]');
  });

  test("loads, puts and schema pieces", () => {
    const load = { ...ref, parts: [{ kind: "tsfile", size: 10, sha256: sha }] };
    expect(success(decode(Load, load))).toEqual(load);
    expect(success(decode(Put, { ...load, held: ["resource"] }))).toEqual({ ...load, held: ["resource"] });
    expect(failure(decode(Put, { ...load, held: ["other"] }))).toContain('["held"]');
    expect(failure(decode(Load, { ...load, parts: [{ kind: "tsfile", size: -1, sha256: sha }] }))).toContain('["parts"]');
    const piece = { file: "mlog.bin", epoch: 0, offset: 12, sha256: sha };
    expect(success(decode(SchemaPiece, piece))).toEqual(piece);
    expect(success(decode(SchemaPiece, { ...piece, file: "mlog.txt" }))).toMatchObject({ file: "mlog.txt" });
    expect(failure(decode(SchemaPiece, { ...piece, file: "mlog.log" }))).toContain('["file"]');
    expect(failure(decode(SchemaPiece, { ...piece, epoch: -1 }))).toContain('["epoch"]');
  });

  test("a reply's code must be one of Code: any other number is a bad message", () => {
    expect(success(decode(HelloReply, { code: 0, message: "welcome", features: ["put"], maxFilesInFlight: 4 }))).toMatchObject({
      code: 0,
      features: ["put"],
    });
    expect(failure(decode(HelloReply, { code: 999, message: "?" }))).toContain('["code"]');
    expect(failure(decode(HelloReply, { code: 0 }))).toContain('["message"]');
  });
});
