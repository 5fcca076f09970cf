// The link: nats-server killed -9 and restarted mid-file (same port, same store), and a chunk
// corrupted on the wire by the test-only switch.
import { describe, expect, test } from "vitest";
import { allCells, cellName } from "./cells.js";

describe("nats-server and wire faults", () => {
  test.each(
    allCells()
      .filter((c) => c.group === "network" && c.quick)
      .map((c) => [cellName(c), c] as const),
  )("%s", async (_name, cell) => {
    const result = await cell.run();
    expect(result.problems).toEqual([]);
  });
});
