// How the charts name guards and events (src/machines/diagram.ts), and the small helpers of
// src/machines/senderTypes.ts the round machine decides with.
import { and, not, or } from "xstate";
import { describe, expect, test } from "vitest";
import { eventLabel, guardName } from "../../src/machines/diagram.js";
import { asStepFailure, fitsOneMessage, isStepFailure } from "../../src/machines/senderTypes.js";
import type { SyncUnit } from "../../src/protocol/parts.js";

describe("chart names", () => {
  test("a guard prints as its name; not/and/or as their parts; anything unnamed as `guard`", () => {
    expect(guardName(undefined)).toBeUndefined();
    expect(guardName("canRetry")).toBe("canRetry");
    expect(guardName({ type: "admitted", params: {} })).toBe("admitted");
    expect(guardName(null)).toBe("guard");
    expect(guardName({ name: "x" })).toBe("guard");
    expect(guardName(() => true)).toBe("guard");
    expect(guardName(not("inOrder"))).toBe("not inOrder");
    expect(guardName(and(["forCurrentFile", not("numericOffset")]))).toBe("forCurrentFile and not numericOffset");
    expect(guardName(or(["a", "b"]))).toBe("a or b");
    expect(guardName(and([() => true, "b"]))).toBe("guard and b");
    // A function that only looks like a higher-order guard is no guard of XState's.
    expect(guardName(Object.assign(() => true, { check: true, guards: "a" }))).toBe("guard");
    expect(guardName(Object.assign(() => true, { check: true }))).toBe("guard");
    expect(guardName(Object.assign(() => true, { guards: ["a"] }))).toBe("guard");
  });

  test("actor and delay events read as done, error and after; everything else as itself", () => {
    expect(eventLabel("xstate.done.actor.0.senderRound.scanning")).toBe("done");
    expect(eventLabel("xstate.done.actor.12.senderRound.transfer.part")).toBe("done");
    expect(eventLabel("xstate.error.actor.3.receiverSession.verifying")).toBe("error");
    expect(eventLabel("xstate.after.backoff.senderRound.retryBackoff")).toBe("after backoff");
    // Only whole XState event names: a prefix or suffix around one is an event of its own.
    expect(eventLabel("my.xstate.done.actor.0.m.s")).toBe("my.xstate.done.actor.0.m.s");
    expect(eventLabel("my.xstate.error.actor.0.m.s")).toBe("my.xstate.error.actor.0.m.s");
    expect(eventLabel("my.xstate.after.idle.m.s")).toBe("my.xstate.after.idle.m.s");
    expect(eventLabel("xstate.done.actor.0.m")).toBe("xstate.done.actor.0.m");
    expect(eventLabel("xstate.error.actor.x.m.s")).toBe("xstate.error.actor.x.m.s");
    expect(eventLabel("xstate.done.actor.x.m.s")).toBe("xstate.done.actor.x.m.s");
    expect(eventLabel("offer")).toBe("offer");
  });
});

describe("round helpers", () => {
  const unit = (...sizes: number[]): SyncUnit => ({
    ref: { sg: "root.a", vg: "0", tp: "0", name: "1-1-0-0.tsfile" },
    parts: sizes.map((size, k) => ({ kind: k === 0 ? "resource" : "tsfile", path: `/p${k}`, size, mtimeMs: 0 })),
  });

  test("a file fits one message when all its parts together are at most one chunk", () => {
    expect(fitsOneMessage(unit(10, 90), 100)).toBe(true);
    expect(fitsOneMessage(unit(10, 91), 100)).toBe(false);
    expect(fitsOneMessage(unit(), 0)).toBe(true);
  });

  test("anything thrown becomes a step failure, keeping an Error's message and a failure as it is", () => {
    const f = asStepFailure(new Error("disk gone"));
    expect(isStepFailure(f)).toBe(true);
    expect(f.message).toBe("disk gone");
    expect(f.kind).toBe("retryable");
    expect(asStepFailure(f)).toBe(f);
    expect(asStepFailure("odd").message).toBe("odd");
  });
});
