// kill -9 of `tsync receiver` while receiving, verifying and loading (also between placing a file
// and journaling it), then a restart: nothing lost, nothing loaded twice, the partial copy resumed.
import { describe, expect, test } from "vitest";
import { allCells, cellName } from "./cells.js";

describe("the receiver killed -9, then restarted", () => {
  test.each(
    allCells()
      .filter((c) => c.group === "receiver" && c.quick)
      .map((c) => [cellName(c), c] as const),
  )("%s", async (_name, cell) => {
    const result = await cell.run();
    expect(result.problems).toEqual([]);
  });
});
