// The bench's one window onto scripts/ (plain JavaScript): the server's own
// bundling, workerd config pieces, build manifest and token signer, so the
// bench bundles, binds and authenticates exactly as `npm start` does. Their
// types are stated here, once, and tsc checks them against what it infers
// from the JavaScript (allowJs). Where that inference is too narrow (a
// `= []` default reads as never[]), the call passes the stated type on.
import * as buildJs from "../../scripts/build.mjs";
import * as bundleJs from "../../scripts/bundle.mjs";
import * as signTokenJs from "../../scripts/sign-token.mjs";
import * as workerdConfigJs from "../../scripts/workerd-config.mjs";

/** The project root (the directory holding wrangler.toml and node_modules). */
export const ROOT: string = bundleJs.ROOT;

/** `wrangler deploy --dry-run` of `config` (default: the project's wrangler.toml) into `outDir`; the bundled module's path. */
export const bundle: (outDir: string, options?: { config?: string }) => Promise<string> = bundleJs.bundle;

/** What a wrangler config declares that the server binds. */
export interface WorkerSpec {
  name: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  durableObjects: Array<{ binding: string; className: string; sql: boolean }>;
  vars: Record<string, unknown>;
  secrets: string[];
}

/** Reads a wrangler config (through wrangler itself). */
export const readWorkerSpec: (configPath: string) => Promise<WorkerSpec> = workerdConfigJs.readWorkerSpec;

/** A Worker's binding in the bench's configs: a text value, or a Durable Object namespace (of another service's class with `service`). */
export type Binding = { name: string; text: string } | { name: string; durableObject: string; service?: string };

/** A Durable Object namespace of a rendered Worker. */
export interface Namespace {
  className: string;
  uniqueKey: string;
  sql: boolean;
}

/** A `Workerd.Worker` struct body: one ES module (a file beside the config), bindings, SQLite Durable Objects on a disk service. */
export function renderWorker(worker: {
  moduleName: string;
  moduleFile: string;
  compatibilityDate: string;
  compatibilityFlags?: string[];
  bindings: Binding[];
  durableObjects?: Namespace[];
  storageService: string;
}): string {
  return workerdConfigJs.renderWorker(worker as Parameters<typeof workerdConfigJs.renderWorker>[0]);
}

/** A service of a workerd config: a Worker (a const of the config) or a writable directory. */
export type Service = { name: string; worker: string } | { name: string; disk: string };

/** An HTTP socket of a workerd config. */
export interface Socket {
  name: string;
  address: string;
  service: string;
}

/** A whole workerd config; `workers` maps a const name to a rendered Worker. */
export function renderConfig(config: { services: Service[]; sockets: Socket[]; workers: Record<string, string>; v8Flags?: string[]; header?: string }): string {
  return workerdConfigJs.renderConfig(config as Parameters<typeof workerdConfigJs.renderConfig>[0]);
}

/** The namespace's uniqueKey (`${workerName}-${className}`, Miniflare's rule). */
export const uniqueKey: (workerName: string, className: string) => string = workerdConfigJs.uniqueKey;

/** The current build of dist/workerd, or null when there is none or it is stale. */
export const currentBuild: () => { dir: string } | null = buildJs.currentBuild;

/** What an HS256 API token grants (docs/auth.md). */
export interface TokenGrants {
  accounts: string[];
  zones: string[];
  accountZones?: string[];
  readOnly?: boolean;
  /** Seconds. */
  ttl: number;
  edge?: string | null;
}

/** Signs an HS256 API token with the deployment's API_TOKEN_SECRET. */
export const signToken: (secret: string, grants: TokenGrants, now?: number) => string = signTokenJs.signToken;
