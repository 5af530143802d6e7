/**
 * Every error this API can return, by reason: its status, code and message
 * (src/http/errors.ts holds it to the refusals: a reason without an entry,
 * or an entry without a reason, does not compile). Plain data, imported by
 * the edge agent too. Codes and messages of the Custom CSR table are
 * Cloudflare's, verbatim; codes the seeds do not give are ours, listed in the
 * docs/api.md (a test holds its tables to this one), never reused for another meaning.
 */
export const ERRORS = {
  // Cloudflare's authentication codes (seeds' table, 401).
  no_bearer_token: { status: 401, code: 1000, message: "Unable to extract bearer token" },
  unparseable_jwt: { status: 401, code: 1001, message: "Unable to parse JWT token" },
  bad_jwt_header: { status: 401, code: 1002, message: "Bad JWT header" },
  jwt_verification_failed: { status: 401, code: 1003, message: "Failed to verify JWT token" },
  unusable_jwt_claims: { status: 401, code: 1004, message: "Failed to get claims from JWT token" },
  missing_jwt_claims: { status: 401, code: 1005, message: "JWT token does not have required claims" },
  // Cloudflare's generic codes for credentials and routing.
  invalid_legacy_credentials: { status: 401, code: 9103, message: "Unknown X-Auth-Key or X-Auth-Email" },
  forbidden: { status: 403, code: 10000, message: "Authentication error" },
  no_route: { status: 404, code: 7000, message: "No route for that URI" },
  method_not_allowed: { status: 405, code: 7001, message: "Method not allowed for this endpoint" },

  // The Custom CSR table (seeds), verbatim.
  invalid_json: { status: 400, code: 1400, message: "Unable to decode the JSON request body. Check your input and try again." },
  missing_scope_id: { status: 400, code: 1401, message: "Zone ID is required. Check your input and try again." },
  no_authorization: { status: 400, code: 1402, message: "The request has no Authorization header. Check your input and try again." },
  no_quota: {
    status: 403,
    code: 1403,
    message:
      "No quota has been allocated for this zone. If you are already a paid Cloudflare for SaaS customer, contact your Customer Success Manager for additional provisioning. If you are not yet enrolled, fill out this contact form and our sales team will contact you.",
  },
  not_entitled: {
    status: 403,
    code: 1404,
    message:
      "Access to generating CSRs has not been granted for this zone. If you are already a paid Cloudflare for SaaS customer, contact your Customer Success Manager for additional provisioning. If you are not yet enrolled, fill out this contact form and our sales team will contact you.",
  },
  missing_country: { status: 400, code: 1405, message: "Country field is required. Check your input and try again." },
  missing_state: { status: 400, code: 1406, message: "State field is required. Check your input and try again." },
  missing_locality: { status: 400, code: 1407, message: "Locality field is required. Check your input and try again." },
  missing_organization: { status: 400, code: 1408, message: "Organization field is required. Check your input and try again." },
  missing_common_name: { status: 400, code: 1409, message: "Common Name field is required. Check your input and try again." },
  common_name_too_long: {
    status: 400,
    code: 1410,
    message: "The specified Common Name is too long. Maximum allowed length is 64 characters. Check your input and try again.",
  },
  missing_sans: {
    status: 400,
    code: 1411,
    message: "At least one subject alternative name (SAN) is required. Check your input and try again.",
  },
  invalid_san: {
    status: 400,
    code: 1412,
    message:
      "Invalid subject alternative name(s) (SAN). SANs have to be smaller than 256 characters in length, cannot be IP addresses, cannot contain any special characters such as ~`!@#$%^&*()=+{}[] \\;:’\",<>/? and cannot begin or end with a ‘-’ character. Check your input and try again.",
  },
  non_ascii_san: {
    status: 400,
    code: 1413,
    message: "Subject Alternative Names (SANs) with non-ASCII characters are not supported. Check your input and try again.",
  },
  reserved_tld_san: {
    status: 400,
    code: 1414,
    message:
      "Reserved top domain subject alternative names (SAN), such as ’test’, ’example’, ‘invalid’ or ’localhost’, is not supported. Check your input and try again.",
  },
  unparseable_san: {
    status: 400,
    code: 1415,
    message: "Unable to parse subject alternative name(s) (SAN) - :reason. Check your input and try again.",
  },
  example_domain_san: {
    status: 400,
    code: 1416,
    message:
      "Subject Alternative Names (SANs) ending in example.com, example.net, or example.org are prohibited. Check your input and try again.",
  },
  invalid_key_type: {
    status: 400,
    code: 1417,
    message: "Invalid key type. Only ‘rsa2048’ or ‘p256v1’ is accepted. Check your input and try again.",
  },
  invalid_csr_id: { status: 400, code: 1418, message: "The custom CSR ID is invalid. Check your input and try again." },
  csr_not_found: { status: 404, code: 1419, message: "The custom CSR was not found." },
  csr_in_use: {
    status: 409,
    code: 1420,
    message:
      "The custom CSR is associated with an active certificate pack. You will need to delete all associated active certificate packs before you can delete the custom CSR.",
  },

  // Ours (1430–1439): input the seeds do not cover.
  invalid_field_type: { status: 400, code: 1430, message: "The field has the wrong type. Check your input and try again." },
  field_out_of_range: { status: 400, code: 1421, message: "The field is out of range: :reason. Check your input and try again." },
  invalid_country: {
    status: 400,
    code: 1431,
    message: "Country must be a two-letter ISO 3166-1 alpha-2 code. Check your input and try again.",
  },
  too_many_sans: {
    status: 400,
    code: 1432,
    message: "Too many subject alternative names (SANs). At most 150 are allowed. Check your input and try again.",
  },
  body_too_large: { status: 413, code: 1433, message: "The request body is too large. The limit is 64 KiB." },
  body_timeout: { status: 408, code: 1438, message: "The request body did not arrive in time. Send the whole body at once and try again." },
  invalid_scope_id: {
    status: 400,
    code: 1434,
    message: "The account or zone ID is invalid: it must be 1 to 32 letters, digits, '-' or '_'. Check your input and try again.",
  },
  invalid_query: { status: 400, code: 1435, message: "Invalid query parameter: :reason. Check your input and try again." },
  field_too_long: { status: 400, code: 1436, message: "The field is too long. Check your input and try again." },
  invalid_field_characters: {
    status: 400,
    code: 1437,
    message: "The field contains control characters or is blank. Check your input and try again.",
  },

  // Ours (1440–1449): custom certificates uploaded against a custom CSR.
  invalid_certificate: {
    status: 400,
    code: 1440,
    message: "The certificate could not be parsed. Send the leaf certificate, optionally followed by its chain, as PEM.",
  },
  invalid_certificate_host: {
    status: 400,
    code: 1439,
    message: "The certificate names a host that is not a DNS name (:reason): only letters, digits, '-', '_' and '.' are accepted, with '*.' leftmost.",
  },
  // Cloudflare's code for a custom certificate uploaded twice (its troubleshooting page, error 1220).
  certificate_exists: {
    status: 400,
    code: 1220,
    message: "This certificate already exists in this zone (:reason). Update the existing custom certificate instead of uploading it again.",
  },
  certificate_key_mismatch: {
    status: 400,
    code: 1441,
    message: "The certificate's public key does not match the custom CSR's key.",
  },
  certificate_expired: { status: 400, code: 1442, message: "The certificate has expired." },
  certificate_not_yet_valid: { status: 400, code: 1443, message: "The certificate is not valid yet." },
  invalid_chain: {
    status: 400,
    code: 1444,
    message: "The certificate chain is invalid: each certificate must be issued and signed by the one that follows it.",
  },
  missing_custom_csr_id: {
    status: 400,
    code: 1445,
    message: "custom_csr_id is required: this service installs certificates only for keys it generated.",
  },
  private_key_not_accepted: {
    status: 400,
    code: 1446,
    message: "A private key is not accepted with custom_csr_id: the custom CSR's own key is used.",
  },
  invalid_bundle_method: {
    status: 400,
    code: 1447,
    message: "Invalid bundle_method. Only 'ubiquitous', 'optimal' or 'force' is accepted.",
  },
  invalid_certificate_id: { status: 400, code: 1448, message: "The custom certificate ID is invalid." },
  certificate_not_found: { status: 404, code: 1449, message: "The custom certificate was not found." },
  // Ours: a prioritize body (PUT …/custom_certificates/prioritize) that is not
  // a list of distinct certificates with their priorities; `:reason` names the member.
  invalid_priorities: { status: 400, code: 1478, message: "Invalid certificate priorities: :reason. Check your input and try again." },

  // Ours (1450–1459): Geo Key Manager's `policy` and `geo_restrictions` on a
  // custom certificate. `:reason` says what was found where.
  policy_invalid_character: {
    status: 400,
    code: 1450,
    message: "Invalid policy: :reason. A policy uses only letters, digits, '_', ':', parentheses and spaces.",
  },
  policy_unbalanced_parentheses: { status: 400, code: 1451, message: "Invalid policy: unbalanced parentheses: :reason." },
  policy_expected_term: { status: 400, code: 1452, message: "Invalid policy: :reason." },
  policy_expected_operator: { status: 400, code: 1453, message: "Invalid policy: :reason. Join terms with 'and' or 'or'." },
  policy_unknown_attribute: {
    status: 400,
    code: 1454,
    message: "Invalid policy: :reason. The attributes are 'country' and 'region'.",
  },
  policy_unknown_country: { status: 400, code: 1455, message: "Invalid policy: :reason." },
  policy_unknown_region: {
    status: 400,
    code: 1456,
    message: "Invalid policy: :reason. The regions are AFR, APAC, EEUR, ENAM, EU, ME, OC, SAM, WEUR and WNAM.",
  },
  policy_too_complex: { status: 400, code: 1457, message: "Invalid policy: :reason." },
  invalid_geo_restrictions: {
    status: 400,
    code: 1458,
    message: "Invalid geo_restrictions: it must be an object whose label is 'us', 'eu' or 'highest_security'.",
  },
  policy_with_geo_restrictions: {
    status: 400,
    code: 1459,
    message: "policy and geo_restrictions are mutually exclusive: send one or the other.",
  },

  // Ours (1470–1479): edges and key delivery.
  invalid_edge_id: {
    status: 400,
    code: 1470,
    message: "The edge ID is invalid: it must be 1 to 64 letters, digits, '-', '_' or '.', and not dots only.",
  },
  invalid_edge_key: {
    status: 400,
    code: 1471,
    message: "The edge public key is invalid: :reason. Send an EC P-256 or OKP X25519 public JWK.",
  },
  invalid_edge_labels: { status: 400, code: 1472, message: "The edge labels are invalid: :reason." },
  edge_not_found: { status: 404, code: 1473, message: "The edge was not found." },
  edge_not_registered: {
    status: 403,
    code: 1474,
    message: "This edge is not registered (unknown or revoked): no key is delivered to it.",
  },
  edge_excluded_by_policy: {
    status: 403,
    code: 1475,
    message: "The certificate's policy or geo_restrictions do not allow this edge to hold its key.",
  },
  certificate_expired_not_delivered: {
    status: 410,
    code: 1476,
    message: "The certificate has expired: its key is no longer delivered.",
  },
  record_integrity_failed: {
    status: 500,
    code: 1477,
    message:
      "A stored record (:reason) fails its integrity check: it was changed outside this service. It is refused, and no key is delivered by it; the operator must re-register or re-upload it.",
  },
  // Ours (1480–1489): the audit trail.
  invalid_audit_id: { status: 400, code: 1480, message: "The audit log ID is invalid. Check your input and try again." },
  audit_entry_not_found: { status: 404, code: 1481, message: "The audit log entry was not found in this account or zone." },

  // Ours (1490–1499): zones and the accounts they belong to.
  zone_account_not_recorded: { status: 404, code: 1490, message: "No account is recorded for this zone." },
  zone_account_moved: { status: 409, code: 1491, message: "The zone was recorded under another account (:reason) while its account was being removed." },

  // Cloudflare's rate-limit error (HTTP 429 with Retry-After): here, a scope
  // with more creates waiting for an RSA key generation than it may queue.
  rate_limited: { status: 429, code: 971, message: "Please wait and consider throttling your request speed", retryAfter: 1 },
  internal: { status: 500, code: 1500, message: "Internal Server Error" },
  // A tenant object asked about a scope it does not hold: a routing bug,
  // answered as any internal failure (the object logs both names).
  scope_mismatch: { status: 500, code: 1500, message: "Internal Server Error" },
  // Ours: the deployment's KEY_ENCRYPTION_KEYS secret is missing, malformed or
  // lacks a key a stored record needs. Nothing is written or changed.
  key_encryption_unavailable: {
    status: 503,
    code: 1501,
    message: "Key encryption is not available on this deployment. The operator must configure KEY_ENCRYPTION_KEYS.",
  },
  // Ours: a KEK id that stored data needs is not configured (the same code as
  // a missing secret, naming the id).
  key_encryption_key_missing: {
    status: 503,
    code: 1501,
    message: "Key-encryption key :reason is not configured, and stored data is wrapped under it. The operator must add it back to KEY_ENCRYPTION_KEYS.",
  },
  // Ours (1502–1509): the deployment's readiness (GET /readyz), and keys it cannot use.
  storage_unavailable: {
    status: 503,
    code: 1502,
    message: "Durable Object storage is not writable on this deployment. The operator must check the data directory.",
  },
  readiness_timeout: { status: 503, code: 1503, message: "The readiness check did not complete in time." },
  key_encryption_mismatch: {
    status: 503,
    code: 1505,
    message:
      "Key-encryption key :reason is not the key this deployment's data was wrapped under (its check value differs): nothing is wrapped or unwrapped until the operator restores the original KEY_ENCRYPTION_KEYS entry.",
  },
  key_unwrap_failed: {
    status: 500,
    code: 1506,
    message:
      "A stored private key could not be unwrapped: its wrap is damaged or was moved. The operator can run the key self-check on it (POST /admin/v1/{kind}/{id}/custom_csrs/{csr_id}/verify).",
  },
  // Custom hostnames (Cloudflare's table for its custom hostname API, whose
  // codes overlap the Custom CSR table's with other meanings: docs/api.md has
  // one table per API). Messages verbatim where Cloudflare gives them.
  hostname_metadata_invalid: { api: "custom_hostnames", status: 400, code: 1401, message: "Unable to encode the Custom Metadata as JSON. Check your input and try again." },
  hostname_quota_unallocated: {
    api: "custom_hostnames", status: 403,
    code: 1404,
    message: "No quota has been allocated for this zone. If you are already a paid Cloudflare for SaaS customer, contact your Customer Success Manager for additional provisioning. If you are not yet enrolled, fill out this contact form and our sales team will contact you.",
  },
  hostname_quota_exceeded: {
    api: "custom_hostnames", status: 403,
    code: 1405,
    message: "Quota exceeded. If you are already a paid Cloudflare for SaaS customer, contact your Customer Success Manager for additional provisioning. If you are not yet enrolled, fill out this contact form and our sales team will contact you.",
  },
  hostname_duplicate: { api: "custom_hostnames", status: 409, code: 1406, message: "Duplicate custom hostname found." },
  hostname_invalid: {
    api: "custom_hostnames", status: 400,
    code: 1407,
    message:
      "Invalid custom hostname. Custom hostnames have to be smaller than 256 characters in length, cannot be IP addresses, cannot contain any special characters such as ~`!@#$%^&*()=+{}[] \\;:’\",<>/? and cannot begin or end with a ‘-’ character. Check your input and try again.",
  },
  hostname_non_ascii: { api: "custom_hostnames", status: 400, code: 1408, message: "Custom hostnames with non-ASCII characters are not supported. Check your input and try again." },
  hostname_reserved_tld: {
    api: "custom_hostnames", status: 400,
    code: 1409,
    message: "Reserved top domain custom hostnames, such as 'test', 'example', 'invalid' or 'localhost', is not supported. Check your input and try again.",
  },
  hostname_unparseable: { api: "custom_hostnames", status: 400, code: 1410, message: "Unable to parse custom hostname - :reason. Check your input and try again." },
  hostname_example_domain: {
    api: "custom_hostnames", status: 400,
    code: 1411,
    message: "Custom hostnames ending in example.com, example.net, or example.org are prohibited. Check your input and try again.",
  },
  origin_invalid: {
    api: "custom_hostnames", status: 400,
    code: 1415,
    message:
      "Invalid custom origin hostname. Custom origin hostnames have to be smaller than 256 characters in length, cannot be IP addresses, cannot contain any special characters and cannot begin or end with a ‘-’ character. Check your input and try again.",
  },
  origin_non_ascii: { api: "custom_hostnames", status: 400, code: 1416, message: "Custom origin hostnames with non-ASCII characters are not supported. Check your input and try again." },
  origin_reserved_tld: {
    api: "custom_hostnames", status: 400,
    code: 1417,
    message: "Reserved top domain custom origin hostnames, such as 'test', 'example', 'invalid' or 'localhost', is not supported. Check your input and try again.",
  },
  origin_unparseable: { api: "custom_hostnames", status: 400, code: 1418, message: "Unable to parse custom origin hostname - :reason. Check your input and try again." },
  origin_example_domain: {
    api: "custom_hostnames", status: 400,
    code: 1419,
    message: "Custom origin hostnames ending in example.com, example.net, or example.org are prohibited. Check your input and try again.",
  },
  origin_wildcard: { api: "custom_hostnames", status: 400, code: 1420, message: "Wildcard custom origin hostnames are not supported. Check your input and try again." },
  hostname_setting_invalid: { api: "custom_hostnames", status: 400, code: 1422, message: "Invalid `:reason` setting. Check your input and try again." },
  hostname_certificate_unparseable: { api: "custom_hostnames", status: 400, code: 1426, message: "The certificate that you uploaded cannot be parsed. Check your input and try again." },
  hostname_certificate_empty: {
    api: "custom_hostnames", status: 400,
    code: 1427,
    message: "The certificate that you uploaded is empty. Send custom_certificate, or method and type to have the CSR's certificate issued by ACME. Check your input and try again.",
  },
  hostname_csr_id_invalid: { api: "custom_hostnames", status: 400, code: 1430, message: "The custom CSR ID is invalid. Check your input and try again." },
  hostname_csr_not_found: { api: "custom_hostnames", status: 404, code: 1431, message: "The custom CSR was not found." },
  hostname_method_unsupported: {
    api: "custom_hostnames", status: 400,
    code: 1432,
    message: "The validation method is not supported. Only `http`, `email`, or `txt` are accepted. Check your input and try again.",
  },
  hostname_email_validation: {
    api: "custom_hostnames", status: 400,
    code: 1432,
    message: "Email validation is not supported by this service: use `http` or `txt` (an ACME CA validates by HTTP or DNS).",
  },
  hostname_type_unsupported: { api: "custom_hostnames", status: 400, code: 1433, message: "The validation type is not supported. Only 'dv' is accepted. Check your input and try again." },
  hostname_ssl_invalid: { api: "custom_hostnames", status: 400, code: 1434, message: "The SSL attribute is invalid. Refer to the API documentation, check your input and try again." },
  hostname_id_invalid: { api: "custom_hostnames", status: 400, code: 1435, message: "The custom hostname ID is invalid. Check your input and try again." },
  hostname_not_found: { api: "custom_hostnames", status: 404, code: 1436, message: "The custom hostname was not found." },
  hostname_filter_invalid: { api: "custom_hostnames", status: 400, code: 1437, message: "Invalid :reason query parameter. Check your input and try again." },
  hostname_id_with_filters: {
    api: "custom_hostnames", status: 400,
    code: 1438,
    message: "Cannot specify other filter parameters in addition to `id`. Only one must be specified. Check your input and try again.",
  },
  hostname_not_modifiable: { api: "custom_hostnames", status: 409, code: 1439, message: "Modifying the custom hostname is not supported. Check your input and try again." },
  hostname_method_and_type_required: { api: "custom_hostnames", status: 400, code: 1440, message: "Both validation type and validation method are required. Check your input and try again." },
  hostname_ciphers_with_tls_1_3: { api: "custom_hostnames", status: 400, code: 1443, message: "Cipher suite selection is not supported for a minimum TLS version of 1.3. Check your input and try again." },
  hostname_certificate_key_mismatch: { api: "custom_hostnames", status: 400, code: 1429, message: "The certificate that you uploaded is not for the custom CSR's key. Check your input and try again." },
  hostname_not_in_certificate: {
    api: "custom_hostnames", status: 400,
    code: 1446,
    message: "The certificate that you uploaded does not include the custom hostname - :reason. Check your input and try again.",
  },
  hostname_bundle_method_invalid: { api: "custom_hostnames", status: 400, code: 1449, message: "The request input `bundle_method` must be one of: ubiquitous, optimal, force." },
  // Ours (1450–1459) in the custom hostname API.
  hostname_custom_key_refused: {
    api: "custom_hostnames", status: 400,
    code: 1450,
    message: "A private key is not accepted (custom_key, custom_cert_bundle): keys are generated and kept by this service. Use custom_csr_id with custom_certificate, or a managed certificate (method and type).",
  },
  hostname_certificate_needs_csr: {
    api: "custom_hostnames", status: 400,
    code: 1451,
    message: "custom_certificate needs custom_csr_id: this service installs certificates only for keys it generated.",
  },
  hostname_http_wildcard: { api: "custom_hostnames", status: 400, code: 1452, message: "A wildcard is validated by DNS only: use method `txt`." },
  hostname_certificate_authority_unknown: {
    api: "custom_hostnames", status: 400,
    code: 1453,
    message: "The certificate authority :reason is not configured on this deployment (ACME_DIRECTORIES).",
  },
  hostname_certificate_invalid: { api: "custom_hostnames", status: 400, code: 1454, message: "The certificate is not usable (:reason). Check your input and try again." },
  hostname_csr_names_uncovered: {
    api: "custom_hostnames", status: 400,
    code: 1455,
    message: "ACME renews a custom CSR's certificate by finalizing with the CSR, so every name in it must be this hostname or its wildcard; it also names :reason. Use a CSR for this hostname only.",
  },

  // Notifications (/accounts/{id}/alerting/v3): Cloudflare's codes where they are known (17004, 17009, 17102), ours from 17450.
  alert_type_invalid: { api: "alerting", status: 400, code: 17004, message: "Invalid alert type: :reason is not one this deployment offers (GET available_alerts)." },
  alert_interval_unsupported: {
    api: "alerting", status: 400,
    code: 17009,
    message: "Invalid alert interval.: customization of alerting interval is not supported for this alert type",
  },
  alert_filters_required: { api: "alerting", status: 400, code: 17103, message: "Filters selection must be provided to create a policy: :reason." },
  alert_mechanisms_required: { api: "alerting", status: 400, code: 17102, message: "At least one mechanism is required: mechanisms.webhooks with a destination id." },
  alert_filter_invalid: { api: "alerting", status: 400, code: 17450, message: "Invalid filter: :reason." },
  alert_webhook_test_failed: { api: "alerting", status: 400, code: 17451, message: "Webhook test failed: :reason. The destination must answer the test message with a 2xx." },
  alert_webhook_not_found: { api: "alerting", status: 404, code: 17452, message: "Webhook not found." },
  alert_policy_not_found: { api: "alerting", status: 404, code: 17453, message: "Policy not found." },
  alert_webhook_in_use: { api: "alerting", status: 409, code: 17454, message: "The webhook is a mechanism of policies :reason: remove it from them first." },
  alert_mechanism_unknown: { api: "alerting", status: 400, code: 17455, message: "No webhook destination of this account has the id at :reason." },
  alert_field_invalid: { api: "alerting", status: 400, code: 17456, message: "Invalid :reason. Check your input and try again." },
  alert_id_invalid: { api: "alerting", status: 400, code: 17457, message: "The webhook or policy id is invalid." },
} as const;
