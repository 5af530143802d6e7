// Builds dist/edge.mjs when its sources changed, once before the tests that run the bin.
import { ensureEdgeBuild } from "../build.mjs";

export default async function setup(): Promise<void> {
  await ensureEdgeBuild();
}
