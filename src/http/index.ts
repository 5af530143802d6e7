// The HTTP floor's public surface: the router, and the pieces of a reply
// tools (bench/) time on their own.
export { readJson } from "./body";
export { pageOf, success } from "./envelope";
export { ERRORS, type Refusal } from "./errors";
export { handle } from "./router";
