// Sender → receiver → storage over a real nats-server, for each storage's end-to-end test.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { buildSampleDataDir, type SampleFile } from "../../src/actors/sampleDataDir.js";
import type { Receiver } from "../../src/actors/receiver/receiver.js";
import type { Sender } from "../../src/actors/sender/sender.js";
import type { RoundSummary } from "../../src/machines/senderTypes.js";
import type { TestNatsServer } from "../harness/natsServer.js";
import { openSender, startReceiver } from "../harness/syncPair.js";

/** Two sealed TsFiles of two devices in one partition: small, real, quick. */
export const smallEdge = (dir: string): Promise<ReadonlyArray<SampleFile>> =>
  buildSampleDataDir(dir, {
    groups: { "root.plant": ["line1.press", "line1.oven"] },
    virtualGroups: 1,
    partitions: 1,
    filesPerPartition: 2,
    pointsPerSeries: 20,
    withUnsealed: false,
  });

export interface Pair {
  readonly edge: string;
  readonly centre: string;
  readonly files: ReadonlyArray<SampleFile>;
  readonly receiver: Receiver;
  readonly sender: Sender;
  readonly round: () => Promise<RoundSummary>;
  readonly close: () => Promise<void>;
}

let groups = 0;

/** An edge with `smallEdge` data and a receiver configured with `receiverProps` (storage_plugin, plugin.*). */
export const openPair = async (
  server: TestNatsServer,
  root: string,
  receiverProps: Record<string, string>,
  senderProps: Record<string, string> = {},
): Promise<Pair> => {
  const group = `g${process.pid}x${groups++}`;
  const edge = join(root, `${group}-edge`);
  const centre = join(root, `${group}-centre`);
  const files = await smallEdge(edge);
  const receiver = await startReceiver(server, centre, { receiver_group: group, ...receiverProps });
  let sender: Sender;
  try {
    sender = await openSender(server, edge, { receiver_group: group, max_number_of_sync_file_retry: "0", ...senderProps });
  } catch (e) {
    await receiver.stop();
    throw e;
  }
  return {
    edge,
    centre,
    files,
    receiver,
    sender,
    round: () => sender.runOnce(),
    close: async () => {
      await sender.close();
      await receiver.stop();
    },
  };
};

export const deleteOnEdge = async (f: SampleFile): Promise<void> => {
  await rm(`${f.path}.resource`, { force: true });
  await rm(f.path, { force: true });
};
