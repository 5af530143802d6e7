// The example request `npm start` and `npm run dev` print for a local user.
import { signToken } from "./sign-token.mjs";

/** A day-long token for demo-account and demo-zone, and a curl that creates a CSR with it. */
export function exampleRequest(origin, apiTokenSecret) {
  const token = signToken(apiTokenSecret, { accounts: ["demo-account"], zones: ["demo-zone"], ttl: 86400 });
  return `
Custom CSR API on ${origin}
A token for account "demo-account" and zone "demo-zone" (valid for a day):

  export CLOUDFLARE_API_TOKEN=${token}

  curl -s ${origin}/client/v4/zones/demo-zone/custom_csrs \\
    -H "Authorization: Bearer $CLOUDFLARE_API_TOKEN" -H "Content-Type: application/json" \\
    -d '{"common_name":"app.customer-one.com","country":"US","state":"California","locality":"San Francisco","organization":"Customer One","sans":["app.customer-one.com"],"key_type":"p256v1"}'

More tokens: npm run --silent token -- --account ID [--zone ID] [--read-only]
`;
}
