// Request bodies shared by the workerd and the end-to-end suites (no runtime
// imports, so it loads in either).

/** A create body that passes every check; override fields per test. */
export function csrBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    common_name: "app.customer-one.com",
    country: "US",
    state: "California",
    locality: "San Francisco",
    organization: "Customer One, Inc.",
    sans: ["app.customer-one.com", "www.customer-one.com"],
    ...overrides,
  };
}
