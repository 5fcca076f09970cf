import { parseArgs } from "node:util";
import { OwnershipRegistry } from "../actors/receiver/ownership.js";
import { withReceiverNats } from "./receiverConnection.js";

/** `tsync owners list` and `tsync owners release GROUP --yes`. */
export const runOwners = async (args: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: "string", default: "conf/receiver.properties" }, yes: { type: "boolean", default: false }, json: { type: "boolean", default: false } },
  });
  const [sub, group] = positionals;
  const config = values.config ?? "conf/receiver.properties";
  if (sub === "list") {
    return withReceiverNats(config, async (nc, c) => {
      const owners = await (await OwnershipRegistry.open(nc, c.receiver_group)).list();
      if (values.json) process.stdout.write(JSON.stringify(owners, null, 2) + "\n");
      else if (owners.length === 0) process.stdout.write("no storage group has an owner yet\n");
      else for (const o of owners) process.stdout.write(`${o.sg}\t${o.senderId}\tsince ${o.since}\n`);
      return 0;
    });
  }
  if (sub === "release" && group !== undefined) {
    if (!values.yes) {
      process.stderr.write(`releasing ${group} lets the next sender that offers it become its owner; add --yes to do it\n`);
      return 2;
    }
    return withReceiverNats(config, async (nc, c) => {
      const released = await (await OwnershipRegistry.open(nc, c.receiver_group)).release(group);
      process.stdout.write(released ? `released ${group}\n` : `${group} had no owner\n`);
      return released ? 0 : 1;
    });
  }
  process.stderr.write("usage: tsync owners list [--json] | tsync owners release GROUP --yes  [--config FILE]\n");
  return 2;
};
