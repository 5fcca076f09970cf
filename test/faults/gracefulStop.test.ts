// SIGTERM: the sender lets its chunks in flight land, persists, exits 0 within 10 s; a second
// signal exits at once. Either way the next run resumes and ends consistent.
import { describe, expect, test } from "vitest";
import { allCells, cellName } from "./cells.js";

describe("graceful and immediate stops", () => {
  test.each(
    allCells()
      .filter((c) => c.group === "stop" && c.quick)
      .map((c) => [cellName(c), c] as const),
  )("%s", async (_name, cell) => {
    const result = await cell.run();
    expect(result.problems).toEqual([]);
  });
});
