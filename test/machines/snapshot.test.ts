// Reading inspected snapshots (src/machines/snapshot.ts) and the actor slots machines declare (slot.ts).
import { createActor, createMachine, toPromise } from "xstate";
import { describe, expect, test } from "vitest";
import { needs } from "../../src/machines/slot.js";
import { machineSnapshot, stateText } from "../../src/machines/snapshot.js";

describe("machine snapshots", () => {
  test("only a machine's snapshot is one: it has a machine, a value, a context and a status", () => {
    const actor = createActor(createMachine({ id: "m", initial: "a", states: { a: {} } })).start();
    const snap = actor.getSnapshot();
    expect(machineSnapshot(snap)).toBe(snap);
    expect(machineSnapshot(snap)?.machine.id).toBe("m");
    const whole = { machine: { id: "m" }, value: "a", context: {}, status: "active" };
    expect(machineSnapshot(whole)).toBe(whole);
    for (const missing of ["machine", "value", "context", "status"]) {
      const { [missing as keyof typeof whole]: _, ...rest } = whole;
      expect(machineSnapshot(rest), missing).toBeUndefined();
    }
    expect(machineSnapshot(null)).toBeUndefined();
    expect(machineSnapshot("ready")).toBeUndefined();
    expect(machineSnapshot(undefined)).toBeUndefined();
  });

  test("a state value as one line: nested states joined with dots, empty children dropped", () => {
    expect(stateText("ready")).toBe("ready");
    expect(stateText({ transfer: "sending" })).toBe("transfer.sending");
    expect(stateText({ transfer: { part: { chunk: "waiting" } } })).toBe("transfer.part.chunk.waiting");
    expect(stateText({ transfer: {} })).toBe("transfer");
    expect(stateText({ transfer: undefined })).toBe("transfer");
    expect(stateText({})).toBe("");
    expect(stateText(null)).toBe("");
    expect(stateText(7)).toBe("");
    expect(stateText(undefined)).toBe("");
  });

  test("an actor slot left unprovided fails loudly, naming itself", async () => {
    const actor = createActor(needs<number, void>("scan")).start();
    await expect(toPromise(actor)).rejects.toThrow('actor "scan" was not provided');
  });
});
