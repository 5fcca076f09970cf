// Every failure class a sender's actor rejects with: the behaviour it stands for, and recognised by
// class whatever it carries.
import { describe, expect, test } from "vitest";
import {
  Conflict,
  Disconnected,
  Fatal,
  isSenderFailure,
  NoResponders,
  PermissionDenied,
  Refused,
  replyFailure,
  Retryable,
  SessionLost,
  Stopped,
  Timeout,
  Unexpected,
  Unsendable,
  type FailureKind,
} from "../../src/protocol/failures.js";
import { Code } from "../../src/protocol/status.js";

const answered = { code: Code.internal, message: "m" };
const transport = { op: "offer", message: "m" };
const local = { message: "m" };

describe("failure classes", () => {
  test("each class's behaviour and tag", () => {
    const cases: Array<[unknown, string, FailureKind]> = [
      [new Conflict(answered), "Conflict", "conflict"],
      [new Refused(answered), "Refused", "refused"],
      [new SessionLost(answered), "SessionLost", "sessionLost"],
      [new Retryable(answered), "Retryable", "retryable"],
      [new Fatal(answered), "Fatal", "fatal"],
      [new Timeout(transport), "Timeout", "retryable"],
      [new NoResponders({ ...transport, kind: "sessionLost" }), "NoResponders", "sessionLost"],
      [new NoResponders({ ...transport, kind: "retryable" }), "NoResponders", "retryable"],
      [new Disconnected(transport), "Disconnected", "retryable"],
      [new PermissionDenied(transport), "PermissionDenied", "refused"],
      [new Unsendable(local), "Unsendable", "fatal"],
      [new Stopped(local), "Stopped", "retryable"],
      [new Unexpected(local), "Unexpected", "retryable"],
    ];
    for (const [f, tag, kind] of cases) {
      expect(f, tag).toMatchObject({ _tag: tag, kind, message: "m" });
      expect(isSenderFailure(f), tag).toBe(true);
    }
  });

  test("replyFailure builds the class of each behaviour, keeping code, message and owner", () => {
    const kinds: Array<[FailureKind, string]> = [
      ["conflict", "Conflict"],
      ["refused", "Refused"],
      ["sessionLost", "SessionLost"],
      ["retryable", "Retryable"],
      ["fatal", "Fatal"],
    ];
    for (const [kind, tag] of kinds)
      expect(replyFailure(kind, { ...answered, owner: "o" })).toMatchObject({ _tag: tag, kind, code: Code.internal, message: "m" });
    expect(replyFailure("conflict", { code: Code.conflict, message: "m", owner: "plant-2" })).toMatchObject({ owner: "plant-2" });
  });

  test("anything else is not a sender failure, whatever its shape", () => {
    for (const e of [new Error("m"), { _tag: "Fatal", kind: "fatal", message: "m" }, "fatal", undefined, null])
      expect(isSenderFailure(e)).toBe(false);
  });
});
