// The one mapping from what a step met to what the sender does: every code and every NATS client
// error, held equal to the tables in docs/protocol.md ("What the sender does with each code").
import { readFile } from "node:fs/promises";
import { fc, test } from "@fast-check/vitest";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import { describe, expect } from "vitest";
import { natsFailure, type RequestOp } from "../../src/actors/natsFailures.js";
import { asStepFailure, isStepFailure } from "../../src/machines/senderTypes.js";
import {
  codeBehaviour,
  Conflict,
  Fatal,
  failureFor,
  kindOfReply,
  PermissionDenied,
  Refused,
  Retryable,
  SessionLost,
  Unexpected,
  type FailureKind,
} from "../../src/protocol/failures.js";
import { Code, codeName, type CodeName, type CodeValue } from "../../src/protocol/status.js";

const names = Object.keys(Code) as CodeName[];
const codes = Object.values(Code);
const kinds: ReadonlyArray<FailureKind> = ["conflict", "refused", "sessionLost", "retryable", "fatal"];
const replyClasses = [Conflict, Refused, SessionLost, Retryable, Fatal];
const sessionOps: ReadonlyArray<RequestOp> = ["offer", "chunk", "commit", "load", "delete", "schema", "bye"];

const anyCode = fc.constantFrom(...codes);
const text = fc.string({ maxLength: 40 });
const maybe = <A>(a: fc.Arbitrary<A>) => fc.option(a, { nil: undefined });

/** The rows of the markdown table that follows `heading` (and, if given, the line starting with `after`). */
const tableRows = async (heading: string, after?: string): Promise<string[][]> => {
  const doc = await readFile(new URL("../../docs/protocol.md", import.meta.url), "utf8");
  let rest = doc.slice(doc.indexOf(heading));
  expect(rest.startsWith(heading), `docs/protocol.md has "${heading}"`).toBe(true);
  if (after !== undefined) rest = rest.slice(rest.indexOf(after));
  const lines = rest.split("\n");
  const start = lines.findIndex((l) => l.startsWith("|"));
  const table = lines.slice(
    start,
    lines.findIndex((l, i) => i > start && !l.startsWith("|")),
  );
  return table.slice(2).map((l) =>
    l
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim().replace(/^`(.*)`$/, "$1")),
  );
};
const codeHeading = "### What the sender does with each code";

describe("wire status code → what the sender does", () => {
  test("every code has exactly one behaviour, and nothing else is in the table", () => {
    expect(Object.keys(codeBehaviour).sort()).toEqual([...names].sort());
    for (const name of names) expect(kinds).toContain(codeBehaviour[name]);
  });

  test("the table equals the one in docs/protocol.md", async () => {
    const rows = await tableRows(codeHeading);
    const documented = Object.fromEntries(rows.map(([name, number, kind]) => [name, { number: Number(number), kind }]));
    const actual = Object.fromEntries(names.map((name) => [name, { number: Code[name], kind: codeBehaviour[name] }]));
    expect(documented).toEqual(actual);
  });

  test.prop([anyCode, text, maybe(text)])(
    "a reply becomes one failure of its code's behaviour, keeping the code",
    (code, message, owner) => {
      const f = failureFor({ code, message, owner });
      expect(f.kind).toBe(codeBehaviour[codeName(code) as CodeName]);
      expect(f.kind).toBe(kindOfReply({ code }));
      expect(f.code).toBe(code);
      expect(replyClasses.filter((C) => f instanceof C)).toHaveLength(1);
      expect(isStepFailure(f)).toBe(true);
      // Refusals and lost sessions read as the receiver wrote them; the rest name their code.
      if (f.kind === "conflict") expect(f).toMatchObject({ _tag: "Conflict", message, owner });
      else if (f.kind === "refused" || f.kind === "sessionLost") expect(f.message).toBe(message);
      else expect(f.message).toBe(`${codeName(code)}: ${message}`);
    },
  );

  test.prop([anyCode, text, text])(
    "a conflict that names a loader fails only that file (fatal); any other code ignores `loader`",
    (code, message, loader) => {
      const f = failureFor({ code, message, loader });
      if (code === Code.conflict)
        expect(f).toMatchObject({ _tag: "Fatal", kind: "fatal", code: Code.conflict, message: `conflict: ${message}` });
      else expect(f.kind).toBe(failureFor({ code, message }).kind);
    },
  );

  test("the behaviours the sender has always had, spelled out", () => {
    const of = (...cs: CodeValue[]) => cs.map((code) => failureFor({ code, message: "m" }).kind);
    expect(of(Code.conflict)).toEqual(["conflict"]);
    expect(of(Code.disabled, Code.addressNotAllowed, Code.unauthorized, Code.protocolMismatch)).toEqual(Array(4).fill("refused"));
    expect(of(Code.unknownSession)).toEqual(["sessionLost"]);
    expect(
      of(Code.digestMismatch, Code.sizeMismatch, Code.unknownFile, Code.outOfOrder, Code.storageFailed, Code.internal, Code.busy),
    ).toEqual(Array(7).fill("retryable"));
    expect(
      of(Code.badTsFile, Code.badName, Code.tooLarge, Code.notReady, Code.badMessage, Code.ok, Code.start, Code.resume, Code.have),
    ).toEqual(Array(9).fill("fatal"));
  });
});

describe("NATS client error → failure", () => {
  const subject = "tsync.g.s.i.sender.session.offer";
  const permission = () => new PermissionViolationError(`Permissions Violation for Publish to "${subject}"`, "publish", subject);
  /** One instance of each error class the documented table names, by class name. */
  const instances: Record<string, () => Error> = {
    PermissionViolationError: permission,
    NoRespondersError: () => new NoRespondersError(subject),
    TimeoutError: () => new TimeoutError(),
    ClosedConnectionError: () => new ClosedConnectionError(),
    DrainingConnectionError: () => new DrainingConnectionError(),
    ConnectionError: () => new ConnectionError("connection refused"),
    "anything else": () => new Error("something odd"),
  };

  test("every documented error maps to its documented failure, alone or as a RequestError's cause, on hello and in a session", async () => {
    const rows = await tableRows(codeHeading, "| NATS client error");
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(instances).sort());
    for (const [name, tag, onHello, inSession] of rows) {
      const make = instances[name ?? ""]!;
      for (const e of [make(), new RequestError("request failed", { cause: make() })]) {
        for (const [op, kind] of [["hello", onHello], ...sessionOps.map((o) => [o, inSession])] as Array<[RequestOp, string]>) {
          const f = natsFailure(op, e);
          expect(f, `${name} on ${op}`).toMatchObject({ _tag: tag, kind, cause: e });
          // No reply came, so no code: the failure says what happened instead.
          expect(f.code).toBeUndefined();
          expect(isStepFailure(f)).toBe(true);
        }
      }
    }
  });

  test.prop([fc.constantFrom<RequestOp>("hello", ...sessionOps), fc.boolean()])(
    "a permission the NATS server refused is `refused`, whether direct or as a RequestError's cause",
    (op, wrapped) => {
      const e = wrapped ? new RequestError("request failed", { cause: permission() }) : permission();
      const f = natsFailure(op, e);
      expect(f).toBeInstanceOf(PermissionDenied);
      expect(f.kind).toBe("refused");
      expect(f.message).toBe(`the NATS server refused ${op}: ${permission().message}`);
    },
  );
});

describe("recognising a failure", () => {
  test("by class, not by shape: a look-alike object is an unexpected error, kept as the cause", () => {
    const lookAlike = { kind: "refused", code: Code.disabled, message: "sync is disabled" };
    expect(isStepFailure(lookAlike)).toBe(false);
    const f = asStepFailure(lookAlike);
    expect(f).toBeInstanceOf(Unexpected);
    expect(f).toMatchObject({ kind: "retryable", cause: lookAlike });
    const refused = failureFor({ code: Code.disabled, message: "sync is disabled" });
    expect(asStepFailure(refused)).toBe(refused);
  });
});
