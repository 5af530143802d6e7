// workerd's capnp config for the Worker, generated from wrangler.toml: the
// server `npm start` runs, and the pieces the benchmark's own configs share.
// The server's config holds no values: vars, secrets and the log level are
// bound with `fromEnvironment` (workerd.capnp, Worker.Binding), the address
// and the storage directory are set on workerd's command line. Outbound
// `fetch` (ACME CAs) goes through workerd's implicit "internet" service
// unless npm start is told otherwise (outboundService below).
import { X509Certificate } from "node:crypto";
import { OPTIONAL_SECRET_NAMES, SECRET_NAMES } from "./dev-vars.mjs";

/** The socket and the disk service of the server config, named for workerd's --socket-addr and --directory-path. */
export const SOCKET = "http";
export const STORAGE_SERVICE = "do-storage";

// Binding kinds wrangler.toml can declare that a single workerd process
// cannot provide here (they live on Cloudflare's network, or need a service
// this config does not define). Each one stops the build with its name.
const UNSUPPORTED_LISTS = [
  "kv_namespaces", "r2_buckets", "d1_databases", "services", "queues.producers", "queues.consumers", "vectorize",
  "hyperdrive", "analytics_engine_datasets", "dispatch_namespaces", "mtls_certificates", "send_email", "workflows",
  "pipelines", "secrets_store_secrets", "ratelimits", "worker_loaders", "triggers.crons", "unsafe.bindings",
];
const UNSUPPORTED_SINGLE = ["ai", "browser", "images", "version_metadata", "assets", "media"];

const at = (object, path) => path.split(".").reduce((o, key) => (o == null ? undefined : o[key]), object);

/**
 * What the server needs from wrangler.toml, read by wrangler itself (so
 * wrangler.json/jsonc and every TOML form work): the name, compatibility
 * date and flags, every Durable Object class bound, every [vars] entry.
 * Throws, naming it, on a binding that npm start cannot serve.
 */
export async function readWorkerSpec(configPath) {
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig({ config: configPath }, { hideWarnings: true });
  const unsupported = [
    ...UNSUPPORTED_LISTS.filter((path) => (at(config, path)?.length ?? 0) > 0),
    ...UNSUPPORTED_SINGLE.filter((path) => at(config, path) !== undefined && at(config, path) !== null),
  ];
  if (unsupported.length) {
    throw new Error(`npm start serves Durable Objects, vars and secrets only; ${configPath} also declares: ${unsupported.join(", ")}`);
  }
  if (!config.name) throw new Error(`${configPath} has no name: Durable Object ids are derived from it`);
  if (!config.compatibility_date) throw new Error(`${configPath} has no compatibility_date`);
  // A class is SQLite-backed when a migration created it so (new_sqlite_classes).
  const sqlClasses = new Set((config.migrations ?? []).flatMap((m) => m.new_sqlite_classes ?? []));
  const durableObjects = (config.durable_objects?.bindings ?? []).map((b) => {
    if (b.script_name && b.script_name !== config.name) {
      throw new Error(`Durable Object binding ${b.name} names another Worker (${b.script_name}); npm start runs this one only`);
    }
    return { binding: b.name, className: b.class_name, sql: sqlClasses.has(b.class_name) };
  });
  const vars = { ...(config.vars ?? {}) };
  for (const name of [...SECRET_NAMES, ...OPTIONAL_SECRET_NAMES]) {
    if (name in vars) throw new Error(`${name} is a secret and must not be a [vars] entry in ${configPath}`);
  }
  return {
    name: config.name,
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags ?? [],
    durableObjects,
    vars,
    secrets: [...SECRET_NAMES, ...OPTIONAL_SECRET_NAMES],
  };
}

/**
 * The namespace's uniqueKey, which names its storage directory and from which
 * workerd derives every object id (idFromName): Miniflare's rule
 * (`${workerName}-${className}`), so data written by `wrangler dev` keeps its
 * ids here.
 */
export function uniqueKey(workerName, className) {
  return `${workerName}-${className}`;
}

/** A capnp text literal. JSON string escapes are valid capnp escapes. */
export const capnpText = (s) => JSON.stringify(String(s));

/** A Worker's binding, in the forms used here: text, json, fromEnvironment, a Durable Object namespace. */
export function renderBinding(b) {
  if ("fromEnvironment" in b) return `(name = ${capnpText(b.name)}, fromEnvironment = ${capnpText(b.fromEnvironment)})`;
  if ("text" in b) return `(name = ${capnpText(b.name)}, text = ${capnpText(b.text)})`;
  if ("json" in b) return `(name = ${capnpText(b.name)}, json = ${capnpText(JSON.stringify(b.json))})`;
  if (b.service) {
    return `(name = ${capnpText(b.name)}, durableObjectNamespace = (serviceName = ${capnpText(b.service)}, className = ${capnpText(b.durableObject)}))`;
  }
  return `(name = ${capnpText(b.name)}, durableObjectNamespace = ${capnpText(b.durableObject)})`;
}

/** A `Workerd.Worker` struct body: one ES module, bindings, and SQLite Durable Object namespaces on a disk service. */
export function renderWorker({ moduleName, moduleFile, compatibilityDate, compatibilityFlags = [], bindings, durableObjects = [], storageService }) {
  const fields = [
    `modules = [(name = ${capnpText(moduleName)}, esModule = embed ${capnpText(moduleFile)})]`,
    `compatibilityDate = ${capnpText(compatibilityDate)}`,
  ];
  if (compatibilityFlags.length) fields.push(`compatibilityFlags = [${compatibilityFlags.map(capnpText).join(", ")}]`);
  fields.push(`bindings = [\n    ${bindings.map(renderBinding).join(",\n    ")},\n  ]`);
  if (durableObjects.length) {
    const namespaces = durableObjects.map(
      (d) => `(className = ${capnpText(d.className)}, uniqueKey = ${capnpText(d.uniqueKey)}, enableSql = ${d.sql ? "true" : "false"})`,
    );
    fields.push(`durableObjectNamespaces = [\n    ${namespaces.join(",\n    ")},\n  ]`);
    fields.push(`durableObjectStorage = (localDisk = ${capnpText(storageService)})`);
  }
  return `(\n  ${fields.join(",\n  ")},\n)`;
}

/**
 * A `Workerd.Network` struct body: the address classes or CIDRs `fetch` may
 * connect to, and TLS trusting the system's store (`trustBrowserCas`, which
 * an explicit network does not do by default) plus `trustedCertificates`,
 * one PEM certificate per entry (workerd reads only the first PEM block of
 * an entry: /work/notes/workerd-outbound.md, verified).
 */
export function renderNetwork({ allow, trustedCertificates = [] }) {
  const tls = ["trustBrowserCas = true"];
  if (trustedCertificates.length) tls.push(`trustedCertificates = [\n      ${trustedCertificates.map(capnpText).join(",\n      ")},\n    ]`);
  return `(allow = [${allow.map(capnpText).join(", ")}], tlsOptions = (${tls.join(", ")}))`;
}

/** A whole config: services (worker, disk or network) and HTTP sockets; `workers` maps a const name to a rendered Worker. */
export function renderConfig({ services, sockets, workers, v8Flags = [], header = "" }) {
  const service = (s) =>
    s.worker
      ? `(name = ${capnpText(s.name)}, worker = .${s.worker})`
      : s.network
        ? `(name = ${capnpText(s.name)}, network = ${renderNetwork(s.network)})`
        : `(name = ${capnpText(s.name)}, disk = (path = ${capnpText(s.disk)}, writable = true))`;
  const socket = (s) => `(name = ${capnpText(s.name)}, address = ${capnpText(s.address)}, http = (), service = ${capnpText(s.service)})`;
  return `${header}using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    ${services.map(service).join(",\n    ")},
  ],
  sockets = [
    ${sockets.map(socket).join(",\n    ")},
  ],${v8Flags.length ? `\n  v8Flags = [${v8Flags.map(capnpText).join(", ")}],` : ""}
);
${Object.entries(workers)
  .map(([name, body]) => `\nconst ${name} :Workerd.Worker = ${body};\n`)
  .join("")}`;
}

/**
 * The service that replaces workerd's implicit "internet" (every Worker's
 * default globalOutbound, so the Worker's `fetch` and that of each of its
 * Durable Objects, fetch() and alarm() alike: DurableObjectNamespace has no
 * outbound of its own). workerd's own is `allow = ["public"]` with the
 * system's trust store; this one keeps both and adds, when asked, private and
 * loopback addresses ("private" is a superset of "local") and more roots.
 * Null when nothing is asked: the config then declares no "internet" and
 * workerd's own applies, as before these options existed.
 */
export function outboundService({ allowPrivate = false, trustedCertificates = [] } = {}) {
  if (!allowPrivate && trustedCertificates.length === 0) return null;
  return { name: OUTBOUND_SERVICE, network: { allow: allowPrivate ? ["public", "private"] : ["public"], trustedCertificates } };
}

/** The name workerd gives the default globalOutbound; a service of that name overrides it. */
export const OUTBOUND_SERVICE = "internet";

/**
 * Every certificate of a PEM text, parsed (node:crypto X509Certificate):
 * each becomes its own trustedCertificates entry, since workerd uses only an
 * entry's first PEM block, and its `toString()` (the PEM re-encoded) is what
 * the config holds, so that nothing but the certificate (no headers, no
 * comments, no key) reaches it. Other PEM blocks are ignored. Throws, naming
 * the block, when a certificate block does not parse.
 */
export function pemCertificates(text) {
  const blocks = String(text).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new Error(`certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate (${error.message})`);
    }
  });
}

/**
 * The server's config for `spec` (readWorkerSpec, or a build's manifest) and
 * its bundled module. Every [vars] entry, every secret and LOG_LEVEL is bound
 * fromEnvironment under its own name; npm start fills that environment. The
 * socket's address and the storage path here are placeholders that npm start
 * always overrides (--socket-addr, --directory-path).
 *
 * Options, for the config npm start writes at run time: `outbound`
 * (outboundService's options; nothing asked gives exactly the built config),
 * `modulePath` (where the module is, relative to this config, when it is not
 * beside it; the module keeps its name), `header`.
 */
export function serverConfig(spec, moduleFile, { outbound = {}, modulePath = moduleFile, header = BUILD_HEADER } = {}) {
  const names = [...new Set([...Object.keys(spec.vars).filter((k) => typeof spec.vars[k] === "string"), "LOG_LEVEL", ...spec.secrets])];
  const bindings = [
    ...spec.durableObjects.map((d) => ({ name: d.binding, durableObject: d.className })),
    // A var that is not a string (wrangler allows JSON vars) cannot come from
    // the environment: it is written into the config, as wrangler would upload it.
    ...Object.entries(spec.vars)
      .filter(([, v]) => typeof v !== "string")
      .map(([name, json]) => ({ name, json })),
    ...names.map((name) => ({ name, fromEnvironment: name })),
  ];
  const classes = [...new Map(spec.durableObjects.map((d) => [d.className, d])).values()];
  const network = outboundService(outbound);
  return renderConfig({
    header,
    services: [
      { name: spec.name, worker: "worker" },
      { name: STORAGE_SERVICE, disk: "data/v3/do" },
      ...(network ? [network] : []),
    ],
    sockets: [{ name: SOCKET, address: "127.0.0.1:8787", service: spec.name }],
    workers: {
      worker: renderWorker({
        moduleName: moduleFile,
        moduleFile: modulePath,
        compatibilityDate: spec.compatibilityDate,
        compatibilityFlags: spec.compatibilityFlags,
        bindings,
        durableObjects: classes.map((d) => ({ className: d.className, uniqueKey: uniqueKey(spec.name, d.className), sql: d.sql })),
        storageService: STORAGE_SERVICE,
      }),
    },
  });
}

const BUILD_HEADER = `# Generated from wrangler.toml by scripts/workerd-config.mjs (npm run build); do not edit.\n# It holds no values: npm start passes vars and secrets in the environment.\n`;
