import { Result } from "effect";
import { expect, test } from "vitest";
import { decodeFleetReport, maxFleetReportBytes } from "../../src/protocol/fleet.js";
import { encodeJson } from "../../src/protocol/messages.js";
import { fleetSubject, fleetWildcard } from "../../src/protocol/subjects.js";

const good = { actor: "round", machine: "senderRound", state: "transferring", status: "active", at: 1, since: 1 };

test("a sender's fleet subject ends in its id, like its hello", () => {
  expect(fleetSubject("g1", "plant-1")).toBe("tsync.g1.fleet.plant-1");
  expect(fleetWildcard("g1")).toBe("tsync.g1.fleet.*");
});

test("a report decodes; one too large, not JSON, of a made-up actor or with a bad field is refused with a reason", () => {
  expect(Result.isSuccess(decodeFleetReport(encodeJson(good)))).toBe(true);
  const refused = (v: unknown, why: RegExp) => {
    const r = decodeFleetReport(typeof v === "string" ? new TextEncoder().encode(v) : encodeJson(v));
    expect(Result.isFailure(r) ? r.failure : "decoded").toMatch(why);
  };
  refused({ ...good, lastError: "x".repeat(maxFleetReportBytes) }, /over 2048/);
  refused("{", /not valid UTF-8 JSON/);
  refused({ ...good, actor: "round-2" }, /actor/);
  refused({ ...good, status: "sleeping" }, /status/);
  refused({ ...good, at: Number.NaN }, /at/);
  refused({ ...good, progress: { done: -1, total: 2 } }, /done/);
});
