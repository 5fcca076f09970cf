// Names from the wire become path segments and subject tokens on the receiver: each check, at its
// limits, and the sentence that explains a refusal.
import { describe, expect, test } from "vitest";
import {
  describeBadName,
  describeBadTsFileName,
  isNumericSegment,
  isSegment,
  isToken,
  isTsFileName,
  maxSegmentBytes,
  maxTsFileNameBytes,
} from "../../src/protocol/names.js";

/** `n` bytes of UTF-8 in `n / 2` characters: two-byte letters, so the byte limit bites before the character one. */
const twoByte = (n: number): string => "é".repeat(n / 2);

describe("segments: one harmless path segment", () => {
  test("letters and digits of any script, '_', '-' and '.' inside a name", () => {
    for (const s of ["root.sg1", "a", "A_b-c.d", "über", "数据", "٣٤", "0", "...", ".hidden", "a..b"]) expect(isSegment(s), s).toBe(true);
  });

  test("no separators, NUL, blanks or other punctuation, not '.' or '..', not empty", () => {
    for (const s of ["", ".", "..", "a/b", "/a", "a/", "a\\b", "a\u0000b", "a b", " a", "a\n", "a:b", "a*", "$JS", "a;b"])
      expect(isSegment(s), JSON.stringify(s)).toBe(false);
  });

  test("at most 255 bytes of UTF-8, counted in bytes, not characters", () => {
    expect(maxSegmentBytes).toBe(255);
    expect(isSegment("a".repeat(255))).toBe(true);
    expect(isSegment("a".repeat(256))).toBe(false);
    expect(isSegment(`a${twoByte(254)}`)).toBe(true);
    expect(isSegment(twoByte(256))).toBe(false);
  });

  test("only strings: a number or an object is not a name, even one that reads as one", () => {
    for (const s of [1, 12, null, undefined, ["a"], { toString: () => "a" }]) expect(isSegment(s)).toBe(false);
  });
});

describe("tokens: ids put into NATS subjects", () => {
  test("1 to 64 ASCII letters, digits, '_' or '-'", () => {
    for (const s of ["a", "Z", "0", "_", "-", "plant-1", "A_z-9", "x".repeat(64)]) expect(isToken(s), s).toBe(true);
    for (const s of ["", "x".repeat(65), "a.b", "a b", "a*", "a>", "ü", "a/b", "\u0000"]) expect(isToken(s), JSON.stringify(s)).toBe(false);
    for (const s of [1, undefined, ["a"]]) expect(isToken(s)).toBe(false);
  });
});

describe("numeric segments: virtual groups, regions and time partitions", () => {
  test("an optional minus and 1 to 19 digits", () => {
    for (const s of ["0", "7", "-1", "1234567890123456789", "-1234567890123456789"]) expect(isNumericSegment(s), s).toBe(true);
    for (const s of ["", "-", "--1", "+1", "1a", "a1", "1.5", "12345678901234567890", " 1", "1 ", "..", "0/1"])
      expect(isNumericSegment(s), JSON.stringify(s)).toBe(false);
    for (const s of [1, 0, undefined]) expect(isNumericSegment(s)).toBe(false);
  });
});

describe("TsFile names", () => {
  test("a segment ending in .tsfile, with something before it", () => {
    expect(isTsFileName("1-1-0-0.tsfile")).toBe(true);
    expect(isTsFileName("x.tsfile")).toBe(true);
    for (const s of [".tsfile", "1-1-0-0.tsfile.resource", "1-1-0-0.TSFILE", "1-1-0-0", "a/b.tsfile", 7])
      expect(isTsFileName(s), String(s)).toBe(false);
    expect(isTsFileName("..tsfile")).toBe(true);
  });

  test("at most 215 bytes, so that the longest staging name beside it still fits in 255", () => {
    expect(maxTsFileNameBytes).toBe(215);
    expect(isTsFileName(`${"a".repeat(208)}.tsfile`)).toBe(true);
    expect(isTsFileName(`${"a".repeat(209)}.tsfile`)).toBe(false);
    expect(isTsFileName(`${twoByte(208)}.tsfile`)).toBe(true);
    expect(isTsFileName(`a${twoByte(208)}.tsfile`)).toBe(false);
  });
});

describe("why a name was refused", () => {
  test("each reason, in the order they are checked", () => {
    expect(describeBadName("sg", 5)).toBe("sg must be a string");
    expect(describeBadName("sg", "")).toBe("sg is empty");
    expect(describeBadName("sg", "a\u0000/b")).toBe("sg contains a NUL byte");
    expect(describeBadName("sg", "a/b")).toBe('sg "a/b" contains a path separator');
    expect(describeBadName("sg", "a\\b")).toBe('sg "a\\\\b" contains a path separator');
    expect(describeBadName("sg", ".")).toBe('sg "." is not a name');
    expect(describeBadName("sg", "..")).toBe('sg ".." is not a name');
    expect(describeBadName("sg", "a".repeat(256))).toBe("sg is longer than 255 bytes (it has 256)");
    expect(describeBadName("sg", twoByte(256))).toBe("sg is longer than 255 bytes (it has 256)");
    expect(describeBadName("sg", "a b")).toBe(`sg "a b" has characters outside letters, digits, '.', '_' and '-'`);
    // A name of exactly 255 bytes is not too long: only its characters are wrong.
    expect(describeBadName("sg", `${"a".repeat(254)}*`)).toContain("has characters outside");
  });

  test("a TsFile name over 215 bytes says so, unless its characters are wrong too", () => {
    const long = `${"a".repeat(209)}.tsfile`;
    expect(describeBadName("file name", long)).toBe(
      "file name is longer than 215 bytes (it has 216), the most a TsFile name may have so its side files fit",
    );
    expect(describeBadName("file name", `${"a".repeat(208)}.tsfile`)).toContain("has characters outside");
    expect(describeBadName("file name", `${"a".repeat(208)}*.tsfile`)).toContain("has characters outside");
    expect(describeBadName("file name", `${"a".repeat(209)}.tsfil`)).toContain("has characters outside");
  });

  test("a TsFile name: the missing suffix first, then what any name is refused for", () => {
    expect(describeBadTsFileName("1-1-0-0.resource")).toBe('file name "1-1-0-0.resource" does not end in .tsfile');
    expect(describeBadTsFileName(".tsfile")).toBe('file name ".tsfile" does not end in .tsfile');
    expect(describeBadTsFileName("a/b.tsfile")).toBe('file name "a/b.tsfile" contains a path separator');
    expect(describeBadTsFileName("a/b")).toBe('file name "a/b" contains a path separator');
    expect(describeBadTsFileName(3)).toBe("file name must be a string");
    expect(describeBadTsFileName(`${"a".repeat(209)}.tsfile`)).toContain("is longer than 215 bytes");
  });
});
