// The auth floor's public surface: what other floors and tools (bench/) use.
export { type Permission, type Principal, authenticate, authorize } from "./authenticate";
export { type TokenClaims, verifyJwt } from "./jwt";
export type { AuthRefusal, Forbidden } from "./refusals";
