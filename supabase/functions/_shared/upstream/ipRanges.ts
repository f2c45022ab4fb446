/**
 * What kind of address an IP literal is, after normalising every form that hides an IPv4
 * address inside IPv6 (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64 64:ff9b::/96, 6to4
 * 2002::/16) and checking the IANA special-purpose registries for both families. Anything that is
 * not plainly globally reachable is `private` (fail closed); 127/8 and ::1 are `loopback`.
 */

export type AddressKind = "public" | "loopback" | "private";

/** [first address, prefix length, kind] for IPv4; everything else is public. */
const IPV4_SPECIAL: [string, number, AddressKind][] = [
  ["0.0.0.0", 8, "private"], // "this network"
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "private"], // shared address space (CGNAT)
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "private"], // link-local, cloud metadata
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "private"], // IETF protocol assignments
  ["192.0.2.0", 24, "private"], // TEST-NET-1
  ["192.31.196.0", 24, "private"], // AS112
  ["192.52.193.0", 24, "private"], // AMT
  ["192.88.99.0", 24, "private"], // 6to4 relay anycast
  ["192.168.0.0", 16, "private"],
  ["192.175.48.0", 24, "private"], // AS112 direct delegation
  ["198.18.0.0", 15, "private"], // benchmarking
  ["198.51.100.0", 24, "private"], // TEST-NET-2
  ["203.0.113.0", 24, "private"], // TEST-NET-3
  ["224.0.0.0", 4, "private"], // multicast
  ["240.0.0.0", 4, "private"], // reserved, and 255.255.255.255
];

function ipv4ToNumber(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return null;
    value = value * 256 + Number(part);
  }
  return value;
}

function classifyIpv4Number(value: number): AddressKind {
  for (const [base, prefix, kind] of IPV4_SPECIAL) {
    const size = 2 ** (32 - prefix);
    const start = ipv4ToNumber(base)!;
    if (value >= start && value < start + size) return kind;
  }
  return "public";
}

/** Eight 16-bit groups, or null when `text` is not an IPv6 literal. */
function parseIpv6(text: string): number[] | null {
  if (!text.includes(":")) return null;
  let body = text;
  // A dotted IPv4 tail (::ffff:127.0.0.1) stands for the last two groups.
  const lastColon = body.lastIndexOf(":");
  const lastPart = body.slice(lastColon + 1);
  if (lastPart.includes(".")) {
    const v4 = ipv4ToNumber(lastPart);
    if (v4 === null) return null;
    body = `${body.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${
      (v4 & 0xffff).toString(16)
    }`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const parts = (s: string) => (s === "" ? [] : s.split(":"));
  const head = parts(halves[0]);
  const rest = halves.length === 2 ? parts(halves[1]) : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const groups = [...head, ...Array(Math.max(fill, 0)).fill("0"), ...rest];
  const values = groups.map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN));
  return values.some(Number.isNaN) ? null : values;
}

function classifyIpv6(g: number[]): AddressKind {
  const v4 = (hi: number, lo: number) => classifyIpv4Number(hi * 65536 + lo);
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 7) && g[7] === 1) return "loopback"; // ::1
  if (zeros(0, 8)) return "private"; // ::
  if (zeros(0, 5) && g[5] === 0xffff) return v4(g[6], g[7]); // ::ffff:a.b.c.d, mapped
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6], g[7]); // ::ffff:0:a.b.c.d
  if (zeros(0, 6)) return v4(g[6], g[7]); // ::a.b.c.d, IPv4-compatible
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4(g[6], g[7]); // NAT64
  if (g[0] === 0x2002) return v4(g[1], g[2]); // 6to4
  const first = g[0];
  if (first < 0x2000 || first > 0x3fff) return "private"; // outside global unicast 2000::/3:
  // ULA fc00::/7, link-local fe80::/10, site-local, multicast ff00::/8, discard 100::/64,
  // local-use NAT64 64:ff9b:1::/48, SRv6 5f00::/16 and everything reserved.
  if (first === 0x2001 && g[1] < 0x200) return "private"; // 2001::/23 incl. Teredo 2001::/32
  if (first === 0x2001 && g[1] === 0xdb8) return "private"; // documentation
  if (first === 0x3fff && g[1] < 0x1000) return "private"; // documentation 3fff::/20
  return "public";
}

/**
 * The kind of an IP literal (`127.0.0.1`, `::ffff:7f00:1`, `[::1]`), or null when `host` is not
 * an IP literal at all (a name, to be resolved first).
 */
export function classifyAddress(host: string): AddressKind | null {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const v4 = ipv4ToNumber(bare);
  if (v4 !== null) return classifyIpv4Number(v4);
  if (bare.includes("%")) return "private"; // a zoned (link-local) IPv6 address
  const v6 = parseIpv6(bare);
  return v6 ? classifyIpv6(v6) : null;
}
