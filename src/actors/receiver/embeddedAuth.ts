/**
 * The embedded nats-server's authorization block, generated from the receiver's own keys and the
 * sender registry. Each sender may publish only its own hello, session and fleet subjects and subscribe
 * only its private inbox; no sender reaches `$JS`, `$KV`, `$O` or `$SYS`. The receiver's service
 * user answers senders but may publish only into their inboxes; its store user alone has JetStream.
 */
import { fleetSubject, fleetWildcard, helloSubject, helloWildcard, senderInboxPrefix } from "../../protocol/subjects.js";
import type { ReceiverIdentity } from "./receiverIdentity.js";
import type { EnrolledSender } from "./senderRegistry.js";

/** Subjects no connection that hears senders may publish to. */
export const privilegedSubjects = ["$JS.>", "$KV.>", "$O.>", "$SYS.>"] as const;

const list = (subjects: ReadonlyArray<string>): string => `[${subjects.map((s) => JSON.stringify(s)).join(", ")}]`;

/** What the senders `ids` may do together: publish their hello, session and fleet subjects, hear their inboxes. */
export const senderSubjects = (group: string, ids: ReadonlyArray<string>) => ({
  publish: ids.flatMap((id) => [helloSubject(group, id), `tsync.${group}.s.*.${id}.>`, fleetSubject(group, id)]),
  subscribe: ids.map((id) => `${senderInboxPrefix(id)}.>`),
});

/**
 * The permissions of senders `ids`, as a nats-server config value: one enrolled sender's, or a
 * leaf node user's on the hub, confined to the senders of its site (docs/scale-out.md).
 */
export const sendersPermissions = (group: string, ids: ReadonlyArray<string>): string => {
  const { publish, subscribe } = senderSubjects(group, ids);
  return `{ publish: { allow: ${list(publish)} }, subscribe: { allow: ${list(subscribe)} } }`;
};

export const senderPermissions = (group: string, id: string): string => sendersPermissions(group, [id]);

export const serviceSubscriptions = (group: string): ReadonlyArray<string> => [
  helloWildcard(group),
  `tsync.${group}.s.>`,
  fleetWildcard(group),
  "_INBOX.>",
];

export const renderAuthorization = (
  group: string,
  service: ReceiverIdentity,
  store: ReceiverIdentity,
  senders: ReadonlyArray<EnrolledSender>,
): string =>
  [
    "authorization {",
    "  users = [",
    `    # receiver (service): hears senders, answers only into their inboxes`,
    `    { nkey: "${service.publicKey}", permissions: { publish: { allow: ${list(["_tsync_inbox.>"])}, deny: ${list(privilegedSubjects)} }, subscribe: { allow: ${list(serviceSubscriptions(group))} } } }`,
    `    # receiver (store): JetStream, KV and object store; hears nothing from senders`,
    `    { nkey: "${store.publicKey}" }`,
    ...senders.map(
      (s) => `    # sender ${s.id}, enrolled ${s.added}\n    { nkey: "${s.nkey}", permissions: ${senderPermissions(group, s.id)} }`,
    ),
    "  ]",
    "}",
    "",
  ].join("\n");
