// The service's error codes the agent acts on, from the Worker's one table
// of them (src/http/error-table.ts, plain data bundled in at build time): the
// only place the agent reads the Worker's sources.
import { ERRORS } from "../../../src/http/error-table.ts";

/**
 * Delivery answers that mean "this certificate is no longer for this edge":
 * it was deleted (1449), its policy now excludes the edge (1475), it expired
 * (1476). A sync keeps what it holds of such a certificate; the next signed
 * listing without it removes it.
 */
export const GONE: ReadonlySet<number> = new Set<number>([
  ERRORS.certificate_not_found.code,
  ERRORS.edge_excluded_by_policy.code,
  ERRORS.certificate_expired_not_delivered.code,
]);
