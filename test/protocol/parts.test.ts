// The parts of a TsFile unit: names beside the TsFile, the send and place orders, and the one key
// of a file (stored in the sender's confirmed journal, so its form must not change).
import { describe, expect, test } from "vitest";
import { fileKey, isSideKind, partFileName, partOrder, placeOrder, sideKinds } from "../../src/protocol/parts.js";
import { codeName, Code, reply } from "../../src/protocol/status.js";

const ref = { sg: "root.sg1", vg: "0", tp: "-1", name: "1-1-0-0.tsfile" };

describe("parts of a unit", () => {
  test("side files are named after their TsFile, as IoTDB names them", () => {
    expect(partFileName("1-1-0-0.tsfile", "tsfile")).toBe("1-1-0-0.tsfile");
    expect(partFileName("1-1-0-0.tsfile", "resource")).toBe("1-1-0-0.tsfile.resource");
    expect(partFileName("1-1-0-0.tsfile", "mods")).toBe("1-1-0-0.tsfile.mods");
    expect(partFileName("1-1-0-0.tsfile", "mods2")).toBe("1-1-0-0.tsfile.mods2");
  });

  test("sent resource first; placed with the resource last; mods and mods2 are the side kinds", () => {
    expect(partOrder).toEqual(["resource", "tsfile", "mods", "mods2"]);
    expect(placeOrder).toEqual(["tsfile", "mods", "mods2", "resource"]);
    expect(sideKinds).toEqual(["mods", "mods2"]);
    expect(partOrder.map(isSideKind)).toEqual([false, false, true, true]);
  });

  test("a file's key, a sender's copy's key and a part's key", () => {
    expect(fileKey(ref)).toBe("root.sg1/0/-1/1-1-0-0.tsfile");
    expect(fileKey(ref, {})).toBe("root.sg1/0/-1/1-1-0-0.tsfile");
    expect(fileKey(ref, { sender: "plant-1" })).toBe("plant-1\u0000root.sg1/0/-1/1-1-0-0.tsfile");
    expect(fileKey(ref, { kind: "mods" })).toBe("root.sg1/0/-1/1-1-0-0.tsfile\u0000mods");
    expect(fileKey(ref, { sender: "s", kind: "resource" })).toBe("s\u0000root.sg1/0/-1/1-1-0-0.tsfile\u0000resource");
  });
});

describe("status codes", () => {
  test("a code's name, and a number outside the table named as a number", () => {
    expect(codeName(Code.ok)).toBe("ok");
    expect(codeName(Code.unknownSession)).toBe("unknownSession");
    expect(codeName(999)).toBe("code 999");
  });

  test("a reply's extra fields cannot override its code or message", () => {
    expect(reply(Code.resume, "go on", { offset: 4 })).toEqual({ code: Code.resume, message: "go on", offset: 4 });
    expect(reply(Code.ok, "fine", { code: Code.internal, message: "other" })).toEqual({ code: Code.ok, message: "fine" });
    expect(reply(Code.busy, "later")).toEqual({ code: Code.busy, message: "later" });
  });
});
