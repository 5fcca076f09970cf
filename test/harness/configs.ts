import { Result } from "effect";
import { parseReceiverConfig, type ReceiverConfig } from "../../src/config/receiver.js";
import { parseSenderConfig, type SenderConfig } from "../../src/config/sender.js";

const unwrap = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(String((r.failure as { message?: string }).message ?? r.failure));
  return r.success;
};

/** A receiver config as a properties file would give it. */
export const receiverConfig = (props: Record<string, string>): ReceiverConfig =>
  unwrap(parseReceiverConfig(props, {}, "test receiver.properties"));

export const senderConfig = (props: Record<string, string>): SenderConfig => unwrap(parseSenderConfig(props, {}, "test sender.properties"));
