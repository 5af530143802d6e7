// The subject and SANs of every benchmarked create (cfssl gets the same).
// No imports: the slice Worker (bench/profile/slices.ts) bundles it too.
export const BODY = {
  common_name: "app.customer-one.com",
  country: "US",
  state: "California",
  locality: "San Francisco",
  organization: "Customer One",
  sans: ["app.customer-one.com", "www.customer-one.com"],
};
