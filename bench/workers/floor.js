// The floors, on the same workerd runtime path as the API:
//   GET /                 a small JSON reply and nothing else;
//   GET /keygen/p256v1    only crypto.subtle.generateKey(ECDSA P-256);
//   GET /keygen/rsa2048   only crypto.subtle.generateKey(RSASSA-PKCS1-v1_5, 2048 bits);
//   GET /do/noop          one RPC to a Durable Object that does nothing;
//   GET /do/record        one RPC to a Durable Object returning a CSR-sized
//                         record from memory, in the API's envelope: the
//                         least a get can cost when the data lives in an object;
//   GET /do/sql           the same record, read from the object's SQLite.
// Loaded into workerd as it is (no build step), so JavaScript, typed with
// JSDoc and checked by bench/workers/tsconfig.json.
import { DurableObject } from "cloudflare:workers";

const RECORD = {
  id: "7b163417-1d2b-4c84-a38a-2fb7a0cd7752",
  created_at: "2026-11-22T23:04:05.678Z",
  key_type: "p256v1",
  common_name: "app.customer-one.com",
  country: "US",
  csr: `-----BEGIN CERTIFICATE REQUEST-----\n${"MIIBRzCB7gIBADBOMQswCQYDVQQGEwJVUzETMBEGA1UECAwKQ2FsaWZvcm5pYTEW\n".repeat(9)}-----END CERTIFICATE REQUEST-----\n`,
  locality: "San Francisco",
  organization: "Customer One",
  sans: ["app.customer-one.com", "www.customer-one.com"],
  state: "California",
};

/** @typedef {typeof RECORD} FloorRecord */

/**
 * @typedef {object} FloorEnv
 * @property {DurableObjectNamespace<FloorObject>} FLOOR
 */

/** @extends {DurableObject<FloorEnv>} */
export class FloorObject extends DurableObject {
  /** Whether this instance has written its record to SQLite. */
  ready = false;

  /** @returns {number} */
  noop() {
    return 1;
  }

  /** @returns {FloorRecord} */
  record() {
    return RECORD;
  }

  /** @returns {FloorRecord} */
  sqlRecord() {
    const sql = this.ctx.storage.sql;
    if (!this.ready) {
      sql.exec("CREATE TABLE IF NOT EXISTS r (id TEXT PRIMARY KEY, body TEXT NOT NULL)");
      sql.exec("INSERT OR REPLACE INTO r (id, body) VALUES (?, ?)", RECORD.id, JSON.stringify(RECORD));
      this.ready = true;
    }
    const { body } = /** @type {{ body: string }} */ (sql.exec("SELECT body FROM r WHERE id = ?", RECORD.id).one());
    return /** @type {FloorRecord} */ (JSON.parse(body));
  }
}

export default {
  /**
   * @param {Request} request
   * @param {FloorEnv} env
   * @returns {Promise<Response>}
   */
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/keygen/rsa2048") {
      await crypto.subtle.generateKey(
        { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
        true,
        ["sign", "verify"],
      );
    } else if (pathname === "/keygen/p256v1") {
      await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
    } else if (pathname.startsWith("/do/")) {
      const stub = env.FLOOR.get(env.FLOOR.idFromName("floor"));
      const result = pathname === "/do/noop" ? await stub.noop() : pathname === "/do/sql" ? await stub.sqlRecord() : await stub.record();
      return Response.json({ success: true, errors: [], messages: [], result });
    }
    return Response.json({ success: true, errors: [], messages: [], result: { ok: true } });
  },
};
