/** THE mapping from a NATS client error on a sender's request to the step's failure (src/protocol cannot import NATS). */
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import { Disconnected, NoResponders, PermissionDenied, Timeout, Unexpected, type TransportFailure } from "../protocol/failures.js";
import type { SessionOp } from "../protocol/subjects.js";

/** The request that failed: a hello, or an operation of a session. */
export type RequestOp = "hello" | SessionOp;

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * What a rejected `nc.request` means for the step. The client reports some errors directly and
 * others as the `cause` of a RequestError, so both are looked at.
 */
export const natsFailure = (op: RequestOp, e: unknown): TransportFailure | Unexpected => {
  const inner = e instanceof RequestError && e.cause !== undefined ? e.cause : e;
  // The server's permissions forbid this subject: retrying with the same credentials cannot help.
  if (inner instanceof PermissionViolationError)
    return new PermissionDenied({ op, message: `the NATS server refused ${op}: ${inner.message}`, cause: e });
  if (inner instanceof NoRespondersError)
    // No session yet: the receiver is away, try later. In a session: it restarted, say hello again.
    return new NoResponders({ op, kind: op === "hello" ? "retryable" : "sessionLost", message: `no receiver answered ${op}`, cause: e });
  if (inner instanceof TimeoutError) return new Timeout({ op, message: `${op} timed out`, cause: e });
  if (inner instanceof ClosedConnectionError || inner instanceof DrainingConnectionError || inner instanceof ConnectionError)
    return new Disconnected({ op, message: `${op} failed: ${messageOf(inner)}`, cause: e });
  return new Unexpected({ message: `${op} failed: ${messageOf(e)}`, cause: e });
};
