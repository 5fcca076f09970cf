// Wire status codes and the one reply builder; what each code means to a sender lives in failures.ts.
import { Schema } from "effect";

/** Wire status codes: stable numbers with a name; the human text travels beside them in `message`. */
export const Code = {
  ok: 0,
  start: 1,
  resume: 2,
  have: 3,
  conflict: 40,
  disabled: 41,
  addressNotAllowed: 42,
  badMessage: 43,
  badName: 44,
  digestMismatch: 45,
  badTsFile: 46,
  sizeMismatch: 47,
  unknownSession: 48,
  unknownFile: 49,
  tooLarge: 50,
  outOfOrder: 51,
  notReady: 52,
  storageFailed: 60,
  internal: 61,
  busy: 62,
  protocolMismatch: 63,
  unauthorized: 64,
} as const;

export type CodeName = keyof typeof Code;
export type CodeValue = (typeof Code)[CodeName];

const names = new Map<number, CodeName>(Object.entries(Code).map(([k, v]) => [v, k as CodeName]));

export const codeName = (code: number): string => names.get(code) ?? `code ${code}`;

/** A code as it is decoded from the wire: one of `Code`; any other number is a bad message. */
export const CodeSchema = Schema.Literals(Object.values(Code));

// What the sender does with each code is not here: `failures.ts` holds that mapping, once.

export interface Status {
  readonly code: CodeValue;
  readonly message: string;
}

/**
 * A reply of the receiver: a code, its text, and the fields its message schema allows
 * (`messages.ts`). Built with `reply`, encoded with `encodeReply`.
 */
export interface Reply {
  // A number rather than `CodeValue` so that a reply built elsewhere (a test's stub actor) fits;
  // `reply` takes only a `Code`, and encoding checks the code against `CodeSchema`.
  readonly code: number;
  readonly message: string;
  readonly [field: string]: unknown;
}

/** The one way a reply is built: `reply(Code.tooLarge, "…", { offset })`. */
export const reply = (code: CodeValue, message: string, extra: Readonly<Record<string, unknown>> = {}): Reply => ({
  ...extra,
  code,
  message,
});
