// The receiver's `ip_white_list`: sender networks allowed to sync, as in the IoTDB sync tool.
//
// - A comma list of CIDRs (`192.168.0.0/16, fd00::/8`); a bare address means that one host.
// - Empty admits nobody; the default `0.0.0.0/0` admits every IPv4 address but no IPv6 one.
// - IPv4 is written as four decimal parts only (ipaddr.js would also take `10/8` or `0x0a.1`,
//   which an operator rarely means).
// - An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, as a dual-stack socket reports it) is matched as
//   the IPv4 address it carries; an IPv4-mapped range (`::ffff:10.0.0.0/104`) is kept as the
//   IPv4 range it denotes (`10.0.0.0/8`). (ipaddr.js also reads the deprecated IPv4-compatible
//   form `::10.0.0.1` as mapped; sockets never report it.)
import ipaddr from "ipaddr.js";
import { Result } from "effect";
import { invalidValue, type ConfigError } from "./errors.js";
import type { Parser } from "./properties.js";

export interface Cidr {
  /** The entry as written. */
  readonly text: string;
  readonly kind: "ipv4" | "ipv6";
  readonly address: ipaddr.IPv4 | ipaddr.IPv6;
  readonly prefixLength: number;
}

export type IpWhiteList = ReadonlyArray<Cidr>;

export const IP_WHITE_LIST_KEY = "ip_white_list";

const parseEntry = (text: string): Result.Result<Cidr, string> => {
  const slash = text.indexOf("/");
  const addressPart = slash === -1 ? text : text.slice(0, slash);
  if (addressPart.includes(":")) {
    const cidrText = slash === -1 ? `${text}/128` : text;
    if (!ipaddr.IPv6.isValidCIDR(cidrText)) return Result.fail("is not an IPv6 CIDR (like fd00::/8)");
    const [address, prefixLength] = ipaddr.IPv6.parseCIDR(cidrText);
    if (address.isIPv4MappedAddress() && prefixLength >= 96)
      return Result.succeed({ text, kind: "ipv4", address: address.toIPv4Address(), prefixLength: prefixLength - 96 });
    return Result.succeed({ text, kind: "ipv6", address, prefixLength });
  }
  const cidrText = slash === -1 ? `${text}/32` : text;
  if (!ipaddr.IPv4.isValidCIDRFourPartDecimal(cidrText)) return Result.fail("is not an IPv4 CIDR (like 192.168.0.0/16)");
  const [address, prefixLength] = ipaddr.IPv4.parseCIDR(cidrText);
  return Result.succeed({ text, kind: "ipv4", address, prefixLength });
};

/** The parser used by the receiver's key table; a failure names the bad entry. */
export const ipWhiteListParser: Parser<IpWhiteList> = (raw) => {
  const out: Array<Cidr> = [];
  for (const entry of raw.split(",").map((s) => s.trim())) {
    if (entry === "") continue;
    const parsed = parseEntry(entry);
    if (Result.isFailure(parsed)) return Result.fail(`has an invalid entry ${JSON.stringify(entry)}, which ${parsed.failure}`);
    out.push(parsed.success);
  }
  return Result.succeed(out);
};

/**
 * Parses an `ip_white_list` value, e.g.
 * `config error: ip_white_list="10.0.0.0/33" has an invalid entry "10.0.0.0/33", which is not an IPv4 CIDR (like 192.168.0.0/16)`.
 */
export const parseIpWhiteList = (text: string): Result.Result<IpWhiteList, ConfigError> => {
  const value = text.trim();
  return Result.mapError(ipWhiteListParser(value, { cwd: "" }), (problem) => invalidValue(IP_WHITE_LIST_KEY, value, problem));
};

/**
 * Whether a peer address (as a socket or the NATS monitor reports it: `10.0.0.1`, `::1`,
 * `::ffff:10.0.0.1`, `[fe80::1%eth0]`) is inside the list. An unparsable address is not allowed.
 */
export const isAllowed = (list: IpWhiteList, address: string): boolean => {
  const bare = address.trim().replace(/^\[(.*)\]$/, "$1");
  const valid = bare.includes(":") ? ipaddr.IPv6.isValid(bare) : ipaddr.IPv4.isValidFourPartDecimal(bare);
  if (!valid) return false;
  const peer = ipaddr.process(bare); // IPv4-mapped IPv6 → IPv4
  return list.some((cidr) => cidr.kind === peer.kind() && peer.match(cidr.address, cidr.prefixLength));
};

/** The list as written, for logs. */
export const formatIpWhiteList = (list: IpWhiteList): string => list.map((c) => c.text).join(", ");
