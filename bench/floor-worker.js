// The floor: the same workerd runtime path with no work behind it, and the
// runtime's own key generation rate, to compare the API against.
export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === "/keygen/rsa2048") {
      await crypto.subtle.generateKey(
        { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
        true,
        ["sign", "verify"],
      );
    } else if (pathname === "/keygen/p256v1") {
      await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
    }
    return Response.json({ success: true, errors: [], messages: [], result: { ok: true } });
  },
};
