import { readFile } from "node:fs/promises";
import { expect, test } from "vitest";
import { renderStatecharts } from "../../src/cli/diagrams.js";
import { toMermaid } from "../../src/machines/diagram.js";
import { senderRound } from "../../src/machines/senderRound.js";

test("docs/statecharts.md is what the machines draw now (run `tsync diagrams` after changing a machine)", async () => {
  expect(await readFile(new URL("../../docs/statecharts.md", import.meta.url), "utf8")).toBe(renderStatecharts());
});

test("the sender round diagram has every state and the retry loop", () => {
  const m = toMermaid(senderRound);
  for (const s of Object.keys(senderRound.root.states)) expect(m).toContain(s);
  expect(m).toContain("fileFailed --> retryBackoff : [canRetry]");
  expect(m).toContain("retryBackoff --> transferring : after backoff");
});
