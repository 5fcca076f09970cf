// Why the mutants that survive `npm run mutate` survive: what scripts/mutationReport.ts prints
// beside them in docs/testing.md. A note matches a survivor of its area whose file path ends with
// `file`, whose first source line contains `line`, and (when given) whose mutator and replacement
// match. Survivors without a note are listed without an explanation.
import type { AreaName } from "./mutationAreas.js";

export interface SurvivorNote {
  readonly area: AreaName;
  readonly file: string;
  readonly line: string;
  readonly mutator?: string;
  readonly replacement?: string;
  readonly why: string;
}

export const survivorNotes: ReadonlyArray<SurvivorNote> = [
  {
    area: "protocol",
    file: "protocol/failures.ts",
    line: 'kind === "refused" || kind === "sessionLost"',
    why: "the message of a failure: only the property tests of `test/protocol/failures.test.ts` check it for every code. they survive the first second of those properties, which is all a mutation run gives each (`scripts/mutationSetup.ts`)",
  },
  {
    area: "protocol",
    file: "protocol/failures.ts",
    line: "r.code === Code.conflict",
    why: "a conflict naming a loader, and the message of a conflict: checked by the property tests of `failures.test.ts` only, cut at a second in mutation runs (see above)",
  },
  {
    area: "protocol",
    file: "protocol/failures.ts",
    line: 'return kind === "conflict"',
    why: "checked by the property tests of `failures.test.ts` only, cut at a second in mutation runs (see above)",
  },
  {
    area: "protocol",
    file: "protocol/failures.ts",
    line: "new Conflict({ code: r.code",
    why: "checked by the property tests of `failures.test.ts` only, cut at a second in mutation runs (see above)",
  },
  {
    area: "protocol",
    file: "protocol/failures.ts",
    line: "new Fatal({ code: r.code, message: `conflict:",
    why: "checked by the property tests of `failures.test.ts` only, cut at a second in mutation runs (see above)",
  },
  {
    area: "protocol",
    file: "protocol/failures.ts",
    line: "return replyFailure(kind, { code: r.code, message })",
    why: "checked by the property tests of `failures.test.ts` only, cut at a second in mutation runs (see above)",
  },
  {
    area: "protocol",
    file: "protocol/fleet.ts",
    line: "",
    why: "the fleet report's limits (text lengths, the actor-name pattern, the 2 KiB bound) are not checked at their boundaries by `test/protocol/fleet.test.ts`; `test/security/attacks/fleet.test.ts` sends oversized and malformed reports to a real receiver, outside this area's tests",
  },
  {
    area: "protocol",
    file: "protocol/status.ts",
    line: "const names = new Map",
    why: "a static mutant (it runs when the module loads): every test of the area ran against it and passed, although `test/protocol/parts.test.ts` checks `codeName` and the mutated module cannot even load; the run did not reload the module with the mutant active, so static mutants read as survivors here",
  },
  {
    area: "protocol",
    file: "protocol/failures.ts",
    line: "(Object.entries(codeBehaviour)",
    why: "a static mutant (see `status.ts` below): `failures.test.ts` checks every code's behaviour",
  },
  {
    area: "protocol",
    file: "protocol/messages.ts",
    line: "Schema.Struct({",
    why: "static mutants: the reply schemas are module-level values, and Stryker does not reload a module for each static mutant of this area; `encodeReply.test.ts` encodes through them",
  },
  {
    area: "protocol",
    file: "protocol/parts.ts",
    line: "const everyKindListed",
    why: "equivalent: a compile-time check that `partOrder` lists every part kind; its value is never read",
  },
  {
    area: "protocol",
    file: "protocol/names.ts",
    line: 'value.endsWith(".tsfile") && bytes > maxTsFileNameBytes',
    why: 'equivalent in use: the mutant changes the message only for a valid segment of 216 to 255 bytes not ending in .tsfile, and no caller describes a valid name (`describeBadTsFileName` says "does not end in .tsfile" first)',
  },
  {
    area: "protocol",
    file: "protocol/subjects.ts",
    line: "reply.startsWith(prefix) &&",
    mutator: "MethodExpression",
    why: "equivalent: the prefix already matched is itself tokens of the allowed characters, so testing the whole subject or its rest gives the same answer",
  },
  {
    area: "protocol",
    file: "protocol/subjects.ts",
    line: "reply.startsWith(prefix) &&",
    mutator: "Regex",
    why: "a missing test, added since (`subjects.test.ts`: an inbox token of several characters after the first)",
  },
  {
    area: "protocol",
    file: "protocol/messages.ts",
    line: "fatal: true",
    why: "a missing test, added since (`messages.test.ts`: a JSON string holding a byte that is not UTF-8)",
  },
  {
    area: "protocol",
    file: "protocol/subjects.ts",
    line: 'if (at === undefined || (token !== "*" && token !== at))',
    why: "equivalent: past the subject's last token a literal token fails the second test anyway, and `*` leaves the lengths unequal, which the last line rejects",
  },
];

/** Per area: what the score means, and why a target is missed when it is. */
export const areaNotes: Partial<Record<AreaName, string>> = {
  machines:
    "Run with `--ignore-static --concurrency 2`: the score covers the mutants of code that runs when the machines run (guards, actions, assigns, helpers, the diagram and snapshot readers). The machine definitions themselves (`setup(...).createMachine({...})`: targets, guard and action names in transitions, delays, the states' structure) are evaluated at import, so each of their mutants is static and needs every test of the area re-run in a fresh module graph, about 20 s each here: 751 of them, counted as ignored, would take about four hours on two cores. The definitions are checked another way: `test/machines/paths.test.ts` reaches every transition of each definition, `diagrams.test.ts` compares what they draw with the committed docs/statecharts.md (a changed target or guard changes the drawing), and `namedGuards.test.ts` checks every guard is named in `setup()`. In mutation runs each property stops after a second (`scripts/mutationSetup.ts`), so the retry properties kill fewer mutants than a full run of them would. The run column is the last incremental run's: the first run (every mutant that is not static) took 24 minutes with two test processes, and the later ones tested only the mutants that new tests reach (`test/machines/receiverSession.replies.test.ts`, `snapshot.test.ts`, `diagramNames.test.ts`, and stricter summaries in `senderRound.test.ts`), which raised the score from 62.8 % to this.",
  protocol:
    "The tests are `test/protocol` (names, subjects, parts, messages and failure classes have unit tests of their own) and `test/machines`, which drive the codecs through the round machine. This run includes the property tests (`scripts/mutationSetup.ts` fixes their seed, so Stryker finds them again, and cuts each at a second); the run before it (87.5 %, 2026-12-05) left them out.",
};

/** Per area not run yet: why, and what a run of it takes. */
export const notRunNotes: Partial<Record<AreaName, string>> = {
  config:
    "Not measured yet: 801 mutants, 79 of them static (the key tables are module-level values, and each static mutant reruns every test of the area, about 50 s); the others take about a second each, so a run is over an hour on the two-core machine. `npm run mutate -- --only config` measures it; the area has no target.",
  machines:
    "Not measured yet: the area's tests include the retry properties (`senderRound.props`, `backoff.props`, about a minute together), which every mutant of the round machine and the backoff reaches, so a run is expected to take well over half an hour on the two-core machine (the protocol area, whose 377 mutants ran against the same machine tests, took 19 minutes). `npm run mutate -- --only machines` measures it; the target is 80 %.",
  receiver:
    "Not measured yet. Most of `src/actors/receiver` (the session host, the receiver, ownership over JetStream, the catalog) is exercised only by tests that start a real nats-server (`test/e2e`, `test/security`, `test/fleet`), each taking seconds per mutant; the area's test list (`scripts/mutationAreas.ts`) holds the fast tests of staging, staging hygiene, address lookups and the journal (through the retry properties), which reach only part of it. A score against the 70 % target needs those nats-server tests added to the list and a run of an hour or more: `npm run mutate -- --only receiver`.",
};
