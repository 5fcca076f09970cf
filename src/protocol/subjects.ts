/**
 * Subject layout. Senders publish only under their own id, so server-side permissions
 * (`tsync.<group>.hello.<id>`, `tsync.<group>.s.*.<id>.>`) pin an identity to credentials.
 */
export const helloSubject = (group: string, senderId: string): string => `tsync.${group}.hello.${senderId}`;
export const helloWildcard = (group: string): string => `tsync.${group}.hello.*`;
export const receiverQueue = (group: string): string => `tsync-receivers-${group}`;

/**
 * A sender's private inbox prefix (nats.js `inboxPrefix`): its permissions let it subscribe only
 * here, so no sender reads another's replies, and the receiver answers only under the prefix of
 * the sender that asked, so a request cannot aim the receiver's reply at any other subject.
 */
export const senderInboxPrefix = (senderId: string): string => `_tsync_inbox.${senderId}`;

/** Whether `reply` is a subject under `senderId`'s own inbox (and nothing else: no wildcards). */
export const isSenderInbox = (reply: string, senderId: string): boolean => {
  const prefix = `${senderInboxPrefix(senderId)}.`;
  return reply.startsWith(prefix) && /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(reply.slice(prefix.length));
};

export const sessionPrefix = (group: string, instance: string, senderId: string, sessionId: string): string =>
  `tsync.${group}.s.${instance}.${senderId}.${sessionId}`;

export type SessionOp = "offer" | "chunk" | "commit" | "load" | "put" | "delete" | "schema" | "bye";

export const sessionSubject = (prefix: string, op: SessionOp): string => `${prefix}.${op}`;

/** Headers of a chunk message; the payload is the raw file bytes. */
export const ChunkHeader = { file: "Tsync-File", offset: "Tsync-Offset" } as const;

/** The header of a `put` request that carries its file's ref and part digests as JSON (a `Put`). */
export const PutHeader = "Tsync-Put";

/** Receiver features a hello reply may list. */
export const Feature = { put: "put" } as const;

/**
 * Headers of a schema piece; the payload is whole records of the sender's schema log, raw. An
 * empty payload asks where the receiver is (`SchemaAck`) without applying anything.
 */
export const SchemaHeader = {
  file: "Tsync-Schema-File",
  epoch: "Tsync-Schema-Epoch",
  offset: "Tsync-Offset",
  sha256: "Tsync-Sha256",
} as const;

/** Room left in each message for headers, inside the server's max_payload. */
export const chunkHeadroom = 4096;
export const chunkSizeFor = (maxPayload: number, configured: number): number => {
  const ceiling = Math.max(1024, maxPayload - chunkHeadroom);
  return configured > 0 ? Math.min(configured, ceiling) : ceiling;
};

/**
 * Where a sender reports its actors' states for the receiver's fleet view. Like the hello subject,
 * the id is the last token, so a permission on the exact subject pins the report to its sender.
 */
export const fleetSubject = (group: string, senderId: string): string => `tsync.${group}.fleet.${senderId}`;
export const fleetWildcard = (group: string): string => `tsync.${group}.fleet.*`;

/** Whether a subscription on `pattern` (NATS wildcards: `*` one token, `>` the rest) hears `subject`. */
export const subjectMatches = (pattern: string, subject: string): boolean => {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (const [i, token] of p.entries()) {
    if (token === ">") return s.length > i;
    const at = s[i];
    if (at === undefined || (token !== "*" && token !== at)) return false;
  }
  return p.length === s.length;
};
