// kill -9 of `tsync sender` in the states of its round (mid-file included), then a new run: every
// file byte-identical on the receiver, each part loaded once, resumed transfers shorter than the file.
// The full list of states is in scripts/faults.ts; these are the suite's share.
import { describe, expect, test } from "vitest";
import { allCells, cellName } from "./cells.js";

describe("the sender killed -9, then run again", () => {
  test.each(
    allCells()
      .filter((c) => c.group === "sender" && c.quick)
      .map((c) => [cellName(c), c] as const),
  )("%s", async (_name, cell) => {
    const result = await cell.run();
    expect(result.problems).toEqual([]);
  });
});
