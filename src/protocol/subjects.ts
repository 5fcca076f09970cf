/**
 * Subject layout. Senders publish only under their own id, so server-side permissions
 * (`tsync.<group>.hello.<id>`, `tsync.<group>.s.*.<id>.>`) pin an identity to credentials.
 */
export const helloSubject = (group: string, senderId: string): string => `tsync.${group}.hello.${senderId}`;
export const helloWildcard = (group: string): string => `tsync.${group}.hello.*`;
export const receiverQueue = (group: string): string => `tsync-receivers-${group}`;

export const sessionPrefix = (group: string, instance: string, senderId: string, sessionId: string): string =>
  `tsync.${group}.s.${instance}.${senderId}.${sessionId}`;

export type SessionOp = "offer" | "chunk" | "commit" | "load" | "delete" | "schema" | "bye";

export const sessionSubject = (prefix: string, op: SessionOp): string => `${prefix}.${op}`;

/** Headers of a chunk message; the payload is the raw file bytes. */
export const ChunkHeader = { file: "Tsync-File", offset: "Tsync-Offset" } as const;

/**
 * Headers of a schema piece; the payload is whole records of the sender's schema log, raw. An
 * empty payload asks where the receiver is (`SchemaAck`) without applying anything.
 */
export const SchemaHeader = { file: "Tsync-Schema-File", epoch: "Tsync-Schema-Epoch", offset: "Tsync-Offset", sha256: "Tsync-Sha256" } as const;

/** Room left in each message for headers, inside the server's max_payload. */
export const chunkHeadroom = 4096;
export const chunkSizeFor = (maxPayload: number, configured: number): number => {
  const ceiling = Math.max(1024, maxPayload - chunkHeadroom);
  return configured > 0 ? Math.min(configured, ceiling) : ceiling;
};
