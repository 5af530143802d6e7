import { describe, expect, it } from "vitest";
import { checkSan } from "../src/pki/san";
import { errorInfo } from "../src/http/envelope";

const reason = (san: string) => checkSan(san, 0)?.reason ?? null;

describe("SAN rules (seeds' codes 1412–1416)", () => {
  it("accepts ordinary names, wildcards in the leftmost label, and private-suffix subdomains", () => {
    for (const san of ["customer-one.com", "a.b.customer-one.co.uk", "*.customer-one.com", "shop.github.io", "x_y.foo.net", "xn--bcher-kva.de"]) {
      expect(reason(san), san).toBeNull();
    }
  });

  it("1412: special characters, IP addresses, bad labels, misplaced wildcards, length", () => {
    const bad = [
      "foo bar.com", "foo~.com", "foo!.com", "a@b.com", "a#b.com", "a$b.com", "a%b.com", "a^b.com", "a&b.com",
      "a(b).com", "a=b.com", "a+b.com", "a{b}.com", "a[b].com", "a\\b.com", "a;b.com", "a:b.com", "a'b.com",
      'a"b.com', "a,b.com", "a<b>.com", "a/b.com", "a?b.com", "a`b.com", "a|b.com",
      "-lead.com", "trail-.com", "a.-b.com", "a.b-.com", "a..com", ".a.com", "a.com.",
      "192.168.0.1", "10.0.0.256", "::1", "2001:db8::1",
      "*", "*.", "a.*.com", "foo*.com", "**.foo.com",
      `${"a".repeat(64)}.com`, `${"a.".repeat(127)}com`, "",
      "tab\t.com", "nul\u0000.com",
    ];
    for (const san of bad) expect(reason(san), JSON.stringify(san)).toBe("invalid_san");
  });

  it("accepts a name of 255 characters and refuses 256", () => {
    const fit = `${"b".repeat(255 - "customer-one.com".length - 1 - 4 * 50)}.${Array(4).fill("c".repeat(49)).join(".")}.customer-one.com`;
    expect(fit.length).toBe(255);
    expect(reason(fit)).toBeNull();
    expect(reason(`a${fit}`)).toBe("invalid_san");
  });

  it("1413: non-ASCII names", () => {
    expect(reason("bücher.de")).toBe("non_ascii_san");
    expect(reason("例え.jp")).toBe("non_ascii_san");
  });

  it("1414: reserved top-level names", () => {
    for (const san of ["foo.test", "foo.example", "foo.invalid", "localhost", "a.localhost", "FOO.TEST"]) {
      expect(reason(san), san).toBe("reserved_tld_san");
    }
  });

  it("1416: example.com, example.net, example.org and their subdomains", () => {
    for (const san of ["example.com", "www.example.net", "*.example.org", "EXAMPLE.COM"]) {
      expect(reason(san), san).toBe("example_domain_san");
    }
    expect(reason("notexample.com")).toBeNull();
  });

  it("1415: public suffixes (ICANN and private) have no eTLD+1", () => {
    for (const san of ["com", "co.uk", "*.co.uk", "github.io", "*.com", "blogspot.com"]) {
      const failure = checkSan(san, 3);
      expect(failure?.reason, san).toBe("unparseable_san");
      expect(failure?.pointer).toBe("/sans/3");
      expect(failure && errorInfo(failure).message).toContain(`cannot derive eTLD+1 for domain "${san.replace(/^\*\./, "")}"`);
    }
  });
});
