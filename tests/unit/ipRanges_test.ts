import fc from "fast-check";
import { assertEquals } from "../support/assert.ts";
import { classifyAddress } from "../../supabase/functions/_shared/upstream/ipRanges.ts";

/** The IPv6 forms that carry an IPv4 address, each written the ways a URL may write it. */
function ipv6FormsOf(ipv4: string): string[] {
  const [a, b, c, d] = ipv4.split(".").map(Number);
  const hi = ((a << 8) | b).toString(16);
  const lo = ((c << 8) | d).toString(16);
  return [
    `::ffff:${ipv4}`, // mapped
    `[::ffff:${hi}:${lo}]`, // mapped, in hex and brackets
    `::ffff:0:${ipv4}`, // translated
    `::${ipv4}`, // compatible
    `64:ff9b::${ipv4}`, // NAT64
    `2002:${hi}:${lo}::1`, // 6to4
  ];
}

Deno.test("classifyAddress reads an IPv4 address inside any IPv6 form as that address", () => {
  for (
    const [ipv4, kind] of [
      ["127.0.0.1", "loopback"],
      ["10.1.2.3", "private"],
      ["169.254.169.254", "private"],
      ["8.8.8.8", "public"],
    ] as const
  ) {
    assertEquals(classifyAddress(ipv4), kind);
    for (const form of ipv6FormsOf(ipv4)) assertEquals([form, classifyAddress(form)], [form, kind]);
  }
});

Deno.test("classifyAddress gives every IPv6 form of any IPv4 address that address's kind", () => {
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((parts) =>
    parts.join(".")
  );
  fc.assert(fc.property(ipv4, (address) => {
    const kind = classifyAddress(address);
    for (const form of ipv6FormsOf(address)) {
      assertEquals([form, classifyAddress(form)], [form, kind]);
    }
  }));
});
