// The receiver's staging disk fills up mid-file (ENOSPC): on a size-limited tmpfs when this
// machine lets us mount one, else with the capacity emulated at the file layer.
import { tmpdir } from "node:os";
import { describe, expect, test } from "vitest";
import { allCells, canMountTmpfs, cellName } from "./cells.js";

const [tmpfs, emulated] = ["tmpfs", "emulated"].map((how) => allCells().find((c) => c.group === "disk" && c.fault.includes(how))!);

describe("staging disk full", () => {
  test(cellName(tmpfs!), async (ctx) => {
    if (!(await canMountTmpfs(tmpdir())))
      ctx.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the emulated variant runs instead");
    const result = await tmpfs!.run();
    expect(result.problems).toEqual([]);
  });

  test(cellName(emulated!), async (ctx) => {
    if (await canMountTmpfs(tmpdir())) ctx.skip("a real size-limited tmpfs was tested; the emulated variant runs in scripts/faults.ts");
    const result = await emulated!.run();
    expect(result.problems).toEqual([]);
  });
});
