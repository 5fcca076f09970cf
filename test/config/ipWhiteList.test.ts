import ipaddr from "ipaddr.js";
import { Result } from "effect";
import { fc, test as propTest } from "@fast-check/vitest";
import { describe, expect, test } from "vitest";
import { formatIpWhiteList, isAllowed, parseIpWhiteList, type IpWhiteList } from "../../src/config/ipWhiteList.js";

const list = (text: string): IpWhiteList => Result.getOrThrow(parseIpWhiteList(text));

describe("parseIpWhiteList", () => {
  test("IPv4 and IPv6 CIDRs, trimmed, empty entries dropped", () => {
    const l = list(" 192.168.0.0/16 ,10.0.0.0/8,, fd00::/8 ,");
    expect(formatIpWhiteList(l)).toBe("192.168.0.0/16, 10.0.0.0/8, fd00::/8");
    expect(l.map((c) => [c.kind, c.prefixLength])).toEqual([
      ["ipv4", 16],
      ["ipv4", 8],
      ["ipv6", 8],
    ]);
  });

  test("a bare address is one host", () => {
    const l = list("10.1.2.3, 2001:db8::7");
    expect(l.map((c) => c.prefixLength)).toEqual([32, 128]);
    expect(isAllowed(l, "10.1.2.3")).toBe(true);
    expect(isAllowed(l, "10.1.2.4")).toBe(false);
    expect(isAllowed(l, "2001:db8::7")).toBe(true);
  });

  test("empty text is an empty list", () => {
    expect(list("")).toEqual([]);
    expect(list("  ")).toEqual([]);
  });

  test.each([
    ["10.0.0.0/33", "is not an IPv4 CIDR (like 192.168.0.0/16)"],
    ["10/8", "is not an IPv4 CIDR (like 192.168.0.0/16)"],
    ["256.0.0.0/8", "is not an IPv4 CIDR (like 192.168.0.0/16)"],
    ["banana", "is not an IPv4 CIDR (like 192.168.0.0/16)"],
    ["10.0.0.0/", "is not an IPv4 CIDR (like 192.168.0.0/16)"],
    ["fd00::/129", "is not an IPv6 CIDR (like fd00::/8)"],
    ["fd00:::1/64", "is not an IPv6 CIDR (like fd00::/8)"],
  ])("invalid entry %j is named", (entry, problem) => {
    const text = `192.168.0.0/16, ${entry}`;
    const result = parseIpWhiteList(text);
    expect(Result.isFailure(result) && result.failure).toMatchObject({
      _tag: "ConfigError",
      key: "ip_white_list",
      value: text,
      message: `config error: ip_white_list=${JSON.stringify(text)} has an invalid entry ${JSON.stringify(entry)}, which ${problem}`,
    });
  });
});

describe("isAllowed", () => {
  test("IPv4 ranges", () => {
    const l = list("192.168.0.0/16");
    expect(isAllowed(l, "192.168.3.4")).toBe(true);
    expect(isAllowed(l, "192.169.0.1")).toBe(false);
  });

  test("0.0.0.0/0 admits every IPv4 address but no IPv6 one", () => {
    const l = list("0.0.0.0/0");
    expect(isAllowed(l, "0.0.0.0")).toBe(true);
    expect(isAllowed(l, "255.255.255.255")).toBe(true);
    expect(isAllowed(l, "::1")).toBe(false);
    expect(isAllowed(l, "2001:db8::1")).toBe(false);
  });

  test("IPv6 ranges, with zone ids and brackets", () => {
    const l = list("fd00::/8, fe80::/10");
    expect(isAllowed(l, "fd12:3456::1")).toBe(true);
    expect(isAllowed(l, "[fd12:3456::1]")).toBe(true);
    expect(isAllowed(l, "fe80::1%eth0")).toBe(true);
    expect(isAllowed(l, "2001:db8::1")).toBe(false);
    expect(isAllowed(l, "10.0.0.1")).toBe(false);
  });

  test("IPv4-mapped IPv6 peers match IPv4 ranges", () => {
    const l = list("10.0.0.0/8");
    expect(isAllowed(l, "::ffff:10.0.0.1")).toBe(true);
    expect(isAllowed(l, "::ffff:a00:1")).toBe(true);
    expect(isAllowed(l, "::ffff:11.0.0.1")).toBe(false);
    expect(isAllowed(list("0.0.0.0/0"), "::ffff:203.0.113.1")).toBe(true);
  });

  test("an IPv4-mapped range is the IPv4 range it denotes", () => {
    const l = list("::ffff:10.0.0.0/104");
    expect(l[0]).toMatchObject({ kind: "ipv4", prefixLength: 8, text: "::ffff:10.0.0.0/104" });
    expect(isAllowed(l, "10.2.3.4")).toBe(true);
    expect(isAllowed(l, "::ffff:10.2.3.4")).toBe(true);
    expect(isAllowed(l, "11.2.3.4")).toBe(false);
  });

  test("an empty list admits nobody", () => {
    expect(isAllowed([], "127.0.0.1")).toBe(false);
    expect(isAllowed([], "::1")).toBe(false);
  });

  test("an unparsable address is not allowed", () => {
    const l = list("0.0.0.0/0, ::/0");
    expect(isAllowed(l, "")).toBe(false);
    expect(isAllowed(l, "localhost")).toBe(false);
    expect(isAllowed(l, "10.1")).toBe(false);
    expect(isAllowed(l, "999.0.0.1")).toBe(false);
  });
});

propTest.prop([fc.ipV4(), fc.integer({ min: 0, max: 32 })])(
  "an IPv4 address is inside its own /n and so is its IPv4-mapped form",
  (address, prefix) => {
    const l = list(`${address}/${prefix}`);
    expect(isAllowed(l, address)).toBe(true);
    expect(isAllowed(l, `::ffff:${address}`)).toBe(true);
  },
);

// Addresses with an embedded dotted IPv4 part are left out: ipaddr.js reads even the deprecated
// IPv4-compatible form (::1.2.3.4) as IPv4-mapped; sockets never report that form.
propTest.prop([fc.ipV6().filter((a) => !a.includes("."))])("::/0 admits every IPv6 address that is not IPv4-mapped", (address) => {
  const mapped = ipaddr.IPv6.parse(address).toNormalizedString().startsWith("0:0:0:0:0:ffff:");
  expect(isAllowed(list("::/0"), address)).toBe(!mapped);
  expect(isAllowed(list("0.0.0.0/0"), address)).toBe(mapped);
});
