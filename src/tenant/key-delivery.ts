import type { TenantCall } from "../core/call";
import type { Clock } from "../core/clock";
import { type Result, fail, ok } from "../core/result";
import type { EdgeRecipient } from "../pki/edge-key";
import type { KeyRefusal, Keyring } from "../pki/keyring";
import type { IntegrityFailed } from "../pki/row-seal";
import type { CertificateNotFound, CsrNotFound, DeliveryRefusal } from "./refusals";
import { placementAllows } from "../pki/geo-policy";
import { sealToEdge } from "../pki/seal";
import type { AuditTrail } from "./audit-trail";
import type { CertificateStore, DeliveryRow } from "./certificate-store";
import type { HostnameKeys } from "./hostname-keys";
import type { HostnameNotFound, HostnameStore } from "./hostname-store";
import type { HostnameTwins } from "./hostname-twins";
import type { KeyType } from "../pki/csr-input";
import type { KeyVault } from "./key-vault";

// Why a delivery that reached the zone was refused, as its audit entry says.
const REFUSALS = {
  certificate_expired_not_delivered: "the certificate has expired (1476)",
  edge_excluded_by_policy: "the certificate's placement excludes the edge (1475)",
} as const;

/** Why a bundle is not delivered: no such certificate (or its row was changed), its placement or lifetime, or its key. */
export type DeliverRefusal = CertificateNotFound | IntegrityFailed | DeliveryRefusal | CsrNotFound | HostnameNotFound | KeyRefusal;

/** A certificate an edge may receive, as the delivery list shows it. */
export interface DeliverableCertificate {
  id: string;
  /** For a custom hostname: its name (the agent names its files by it); absent for a custom certificate. */
  hostname?: string;
  /** A managed certificate's RSA twin (dual certificates): `rsa2048`; absent for every other certificate. */
  key_type?: KeyType;
  hosts: string[];
  expires_on: string;
  modified_on: string;
}

/** What an edge receives for one certificate: the chain in the clear, the key sealed to it. */
export interface DeliveryBundle extends DeliverableCertificate {
  zone_id: string;
  edge_id: string;
  /** PEM, leaf then chain, as uploaded. */
  certificate: string;
  /** The PKCS#8 private key as a compact JWE (ECDH-ES, A256GCM) to the edge's registered key. */
  sealed_key: string;
}

const listed = (row: DeliveryRow): DeliverableCertificate => ({
  id: row.id,
  ...(row.hostname === undefined ? {} : { hostname: row.hostname }),
  ...(row.key_type === undefined ? {} : { key_type: row.key_type }),
  hosts: row.hosts,
  expires_on: row.expires_on,
  modified_on: row.modified_on,
});

/**
 * Decides what a registered edge may receive and assembles its bundles: the
 * one place in a tenant where a private key is delivered. A certificate is
 * delivered to an edge only when it has not expired and its placement
 * (policy or geo_restrictions; none means every edge) admits the edge's
 * labels, as registered at the time of the request (the Worker reads the
 * registry on every request and passes the edge in).
 */
export class KeyDelivery {
  constructor(
    private readonly certificates: Pick<CertificateStore, "placements" | "forDelivery">,
    private readonly hostnames: Pick<HostnameStore, "placements" | "forDelivery">,
    private readonly vault: Pick<KeyVault, "sealKey">,
    /** A managed custom hostname's key, for sealing (src/tenant/hostname-keys.ts). */
    private readonly hostnameKeys: Pick<HostnameKeys, "sealKey">,
    /** Managed certificates' RSA twins (src/tenant/hostname-twins.ts). */
    private readonly twins: Pick<HostnameTwins, "placements" | "forDelivery">,
    private readonly audit: Pick<AuditTrail, "record">,
    private readonly clock: Clock,
  ) {}

  /** The zone's certificates this edge may receive now, in upload order (rows changed in storage are left out). */
  list(call: TenantCall, scopeName: string, keyring: Keyring, edge: EdgeRecipient): Result<DeliverableCertificate[], never> {
    const now = this.clock().getTime();
    const rows = [...this.certificates.placements(keyring, scopeName), ...this.hostnames.placements(keyring, call), ...this.twins.placements(keyring, call)];
    return ok(rows.filter((row) => this.#refusal(row, edge, now) === null).map(listed));
  }

  /**
   * One certificate's bundle for this edge: 1449 when there is no such
   * certificate, 1476 once it has expired, 1475 when its placement excludes
   * the edge; otherwise the chain and the key sealed to the edge, bound to
   * the zone, the certificate, the edge and the certificate's modified_on.
   */
  async deliver(call: TenantCall, scopeName: string, keyring: Keyring, edge: EdgeRecipient, certificateId: string): Promise<Result<DeliveryBundle, DeliverRefusal>> {
    const { scope } = call;
    const hostname = this.hostnames.forDelivery(certificateId, keyring, call);
    if (!hostname.ok) return hostname;
    const twin = hostname.value === null ? this.twins.forDelivery(certificateId, keyring, call) : ok(null);
    if (!twin.ok) return twin;
    const managed = hostname.value ?? twin.value;
    const found = managed === null ? this.certificates.forDelivery(certificateId, keyring, scopeName) : ok(managed);
    if (!found.ok) return found;
    const row = found.value;
    const refusal = this.#refusal(row, edge, this.clock().getTime());
    if (refusal !== null) {
      this.#record(call, row, edge, false, REFUSALS[refusal]);
      return fail({ reason: refusal });
    }
    const seal = (pkcs8: Uint8Array) =>
      sealToEdge(pkcs8, edge.public_key, {
        zone_id: scope.id,
        certificate_id: row.id,
        edge_id: edge.id,
        modified_on: row.modified_on,
        kid: edge.thumbprint,
      });
    const sealed =
      row.key.kind === "csr"
        ? await this.vault.sealKey(scopeName, row.key.id, keyring, seal)
        : await this.hostnameKeys.sealKey(scopeName, row.key.id, keyring, seal, row.key.key_type);
    if (!sealed.ok) return sealed;
    // Recorded before the bundle leaves the object: a delivery whose entry
    // cannot be written is not made (the object's output waits for the write).
    this.#record(call, row, edge, true);
    return ok({ ...listed(row), zone_id: scope.id, edge_id: edge.id, certificate: row.certificate, sealed_key: sealed.value });
  }

  #record(call: TenantCall, row: DeliveryRow, edge: EdgeRecipient, delivered: boolean, info?: string): void {
    this.audit.record(call, {
      action: "deliver",
      resource: { type: "private_key", id: row.key.id },
      result: delivered,
      ...(info === undefined ? {} : { info }),
      metadata: {
        ...(row.hostname === undefined ? { certificate_id: row.id } : { custom_hostname_id: row.key_type === undefined ? row.id : row.key.id, hostname: row.hostname }),
        ...(row.key_type === undefined ? {} : { certificate_id: row.id, key_type: row.key_type }),
        edge_id: edge.id,
        edge_key: edge.thumbprint,
        modified_on: row.modified_on,
      },
    });
  }

  #refusal(row: DeliveryRow, edge: EdgeRecipient, now: number): DeliveryRefusal["reason"] | null {
    if (Date.parse(row.expires_on) < now) return "certificate_expired_not_delivered";
    if (!placementAllows(row.placement, edge.labels)) return "edge_excluded_by_policy";
    return null;
  }
}
