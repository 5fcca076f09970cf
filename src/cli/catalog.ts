// `tsync catalog`: queries the receiver's catalog of arrived files.
import { resolve } from "node:path";
import { Effect } from "effect";
import { loadReceiverConfig } from "../config/receiver.js";
import { Catalog, deviceCount, queryCatalog } from "../actors/receiver/catalog.js";
import { catalogPath } from "../actors/receiver/receiver.js";

/** `tsync catalog`: what has arrived from whom, covering which devices and time. */
export const runCatalog = (values: {
  readonly config: string;
  readonly group: string | undefined;
  readonly device: string | undefined;
  readonly json: boolean;
}): Effect.Effect<number, unknown> => {
  return Effect.flatMap(loadReceiverConfig(values.config), (c) =>
    Effect.tryPromise({
      catch: (e) => e,
      try: async () => {
        const all = await new Catalog(catalogPath(resolve(c.receiver_data_directory))).entries();
        const entries = queryCatalog(all, { group: values.group, device: values.device });
        // A file whose line names only its first devices may hold the device asked for among the rest.
        const unseen =
          values.device === undefined
            ? []
            : queryCatalog(all, { group: values.group }).filter((e) => e.devicesTruncated && !entries.includes(e));
        if (values.json) {
          process.stdout.write(JSON.stringify(entries, null, 2) + "\n");
          return 0;
        }
        if (entries.length === 0) process.stdout.write("nothing matches\n");
        for (const e of entries) {
          process.stdout.write(`${e.ref.sg}/${e.ref.vg}/${e.ref.tp}/${e.ref.name} from ${e.sender}, loaded ${e.loadedAt}\n`);
          for (const d of e.devices) {
            const range =
              d.startTime === null
                ? "empty"
                : `${new Date(Number(d.startTime)).toISOString()} .. ${new Date(Number(d.endTime)).toISOString()}`;
            process.stdout.write(`  ${d.id}: ${range}\n`);
          }
          if (e.devicesTruncated) {
            process.stdout.write(
              `  … and ${deviceCount(e) - e.devices.length} more devices (the catalog names the first ${e.devices.length} of ${deviceCount(e)})\n`,
            );
          }
        }
        for (const e of unseen) {
          process.stdout.write(
            `${e.ref.sg}/${e.ref.vg}/${e.ref.tp}/${e.ref.name} from ${e.sender} may hold it among devices the catalog does not name (it names ${e.devices.length} of its ${deviceCount(e)})\n`,
          );
        }
        return 0;
      },
    }),
  );
};
