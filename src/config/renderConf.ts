// Writes conf/sender.properties and conf/receiver.properties from the key tables.
//   npx tsx src/config/renderConf.ts           write them
//   npx tsx src/config/renderConf.ts --check   exit 1 if either differs from the tables
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { RECEIVER_CONF, renderReceiverProperties } from "./receiver.js";
import { SENDER_CONF, renderSenderProperties } from "./sender.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export const renderedConfFiles: ReadonlyArray<readonly [string, () => string]> = [
  [SENDER_CONF, renderSenderProperties],
  [RECEIVER_CONF, renderReceiverProperties],
];

const main = async (check: boolean): Promise<number> => {
  let stale = 0;
  for (const [relative, render] of renderedConfFiles) {
    const file = `${repoRoot}${relative}`;
    const wanted = render();
    if (check) {
      const current = await readFile(file, "utf8").catch((error: unknown) => `<unreadable: ${String(error)}>`);
      if (current !== wanted) {
        stale++;
        console.error(`${relative} differs from its key table; run npx tsx src/config/renderConf.ts`);
      }
    } else {
      await writeFile(file, wanted);
      console.log(`wrote ${relative}`);
    }
  }
  return stale === 0 ? 0 : 1;
};

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.includes("--check"));
}
