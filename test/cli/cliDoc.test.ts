import { readFile } from "node:fs/promises";
import { expect, test } from "vitest";
import { renderCliDoc } from "../../src/cli/cliDoc.js";

test("docs/cli.md is what src/cli/commands.ts says (regenerate with npx tsx src/cli/cliDoc.ts)", async () => {
  expect(await readFile(new URL("../../docs/cli.md", import.meta.url), "utf8")).toBe(renderCliDoc());
});
