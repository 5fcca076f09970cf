import { open, readFile, truncate } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Catalog } from "../../src/actors/receiver/catalog.js";
import { catalogPath } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { writeSealedTsFile } from "../../src/actors/tsfileFiles.js";
import { Code, codeName } from "../../src/protocol/status.js";
import { formatSummary } from "../../src/cli/summary.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { listFiles, removeAll, tempRoot } from "../harness/syncPair.js";
import { openPair } from "../plugins/e2e.js";

let server: TestNatsServer;
let root: string;
beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot();
});
afterAll(async () => {
  await server.cleanup();
  await removeAll(root);
});

const spec = {
  devices: [
    {
      path: "root.plant.line9",
      measurements: [{ name: "s1", dataType: "INT64" as const, timestamps: [1n, 2n, 3n], values: [1n, 2n, 3n] }],
    },
  ],
};

test("a corrupt TsFile is refused at verify with the reader's reason, quarantined without retries and reported; nothing of it is loaded", async () => {
  const pair = await openPair(server, root, {}, { max_number_of_sync_file_retry: "3" });
  try {
    const dir = join(pair.edge, "sequence", "root.plant", "0", "0");
    // Sealed by IoTDB's rules (a .resource beside it), yet damaged: the tail magic is gone…
    const badTail = await writeSealedTsFile(dir, "1700000000000-90-0-0.tsfile", spec);
    const h = await open(badTail.tsfilePath, "r+");
    await h.write(Buffer.from("XXXXXX"), 0, 6, badTail.size - 6);
    await h.close();
    // …and this one lost its index (a copy cut short).
    const cut = await writeSealedTsFile(dir, "1700000000000-91-0-0.tsfile", spec);
    await truncate(cut.tsfilePath, Math.floor(cut.size / 2));

    const reasons = new Map<string, string>();
    for (const f of [badTail, cut]) {
      const check = await validateTsFile(f.tsfilePath);
      expect(check.ok).toBe(false);
      if (!check.ok) reasons.set(f.tsfilePath.split("/").pop()!, check.reason);
    }

    const summary = await pair.round();
    expect(summary.roundError).toBeUndefined();
    expect(summary.sent.map((s) => s.file).sort()).toEqual(pair.files.map((f) => `${f.sg}/${f.vg}/${f.tp}/${f.name}`).sort());
    expect(summary.failed).toHaveLength(2);
    for (const [name, reason] of reasons) {
      const failed = summary.failed.find((f) => f.file === `root.plant/0/0/${name}`);
      expect(failed, name).toBeDefined();
      expect(failed!.reason).toBe(`${codeName(Code.badTsFile)}: ${name} is not a sound TsFile: ${reason}`);
      expect(failed!.attempts).toBe(1);
      expect(formatSummary(summary)).toContain(`failed   root.plant/0/0/${name}: ${failed!.reason}`);
    }

    const arrived = await listFiles(pair.centre);
    for (const name of reasons.keys()) expect(arrived.filter((p) => p.includes(name))).toEqual([]);
    expect((await new Catalog(catalogPath(pair.centre)).entries()).map((e) => e.ref.name).sort()).toEqual(
      pair.files.map((f) => f.name).sort(),
    );
    // The good files did arrive, byte for byte, in the same round.
    for (const f of pair.files)
      expect(await readFile(join(pair.centre, "sequence", f.sg, f.vg, f.tp, f.name))).toEqual(await readFile(f.path));
  } finally {
    await pair.close();
  }
});
